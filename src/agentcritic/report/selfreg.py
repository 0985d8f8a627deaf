"""The report's self-regulation sections: the offline episodes (``collect``), the PRM
(``train-prm``), the helper and the DP it was distilled from (``train-helper``), and every method ×
budget on held-out tasks (``eval-helper``)."""

from __future__ import annotations

import html

from agentcritic.report.parts import Stage, details, head, img, read_json, title
from agentcritic.report.plots import ask_steps, reliability, success_vs_cost, success_vs_interventions
from agentcritic.report.tables import dict_table
from agentcritic.stage_results import BudgetRow, CollectResult, EvalHelperResult, TrainHelperResult, TrainPRMResult


def collect_section(stage: Stage) -> str:
    """One ``collect`` stage: episodes and transitions, success and help used per help rate p."""
    r = stage.result
    assert isinstance(r, CollectResult)
    return "".join([
        title(stage, "Offline episodes"),
        head({"env": r.env, "policy": r.policy, "intervention": r.intervention, "episodes": r.episodes,
              "tasks": r.tasks, "transitions": r.transitions, "success rate": r.success_rate}),
        dict_table([{"p": row.p, "episodes": row.episodes, "success": row.success_rate,
                     "interventions (mean)": row.mean_interventions, "steps (mean)": row.mean_steps,
                     "errors": row.errors} for row in r.per_p]),
    ])


def prm_section(stage: Stage) -> str:
    """One ``train-prm`` stage: held-out AUROC, Brier and ECE, the sizes, the reliability plot."""
    r = stage.result
    assert isinstance(r, TrainPRMResult)
    parts = [
        title(stage, "Process reward model"),
        head({"held-out AUROC": r.auroc, "Brier": r.brier, "ECE": r.ece, "held-out examples": r.eval_examples,
              "held-out tasks": r.held_out_tasks, "training examples": r.train_examples}),
        img(reliability([b.model_dump() for b in r.reliability], r.ece, r.auroc), f"PRM reliability {stage.name}"),
    ]
    metrics = stage.path(r.metrics)
    if metrics.is_file():
        parts.append(details(read_json(metrics), skip=("eval.reliability.bins",)))
    return "".join(parts)


def helper_section(stage: Stage) -> str:
    """One ``train-helper`` stage: agreement with the DP labels on held-out tasks, and the DP itself."""
    r = stage.result
    assert isinstance(r, TrainHelperResult)
    parts = [title(stage, "Helper"), head({
        "backbone": r.backbone or None, "balanced_accuracy": r.balanced_accuracy, "accuracy": r.accuracy,
        "auroc": r.auroc, "label_ask_rate": r.label_ask_rate, "predicted_ask_rate": r.predicted_ask_rate,
        "examples": r.examples, "states": r.states})]
    dp = stage.path(r.dp)
    budgets = (read_json(dp).get("budgets") or []) if dp.is_file() else []
    if budgets:
        parts.append("<p>The budgeted DP on the training table (the labels' source): predicted success and "
                     "interventions per episode by budget left.</p>")
        parts.append(dict_table([{"budget": b.get("budget"), "predicted success": b.get("predicted_success"),
                                  "interventions": b.get("mean_usage")} for b in budgets]))
    return "".join(parts)


def success_interval(row: BudgetRow) -> str | None:
    """``0.198–0.973``: the row's 95 % Wilson interval over tasks, as the table's rates are shown."""
    if row.success_interval is None:
        return None  # a run from before intervals were recorded
    low, high = row.success_interval
    return f"{low:.3f}–{high:.3f}"


def priced(rows: list[BudgetRow]) -> bool:
    """Whether costs tell more than counts: several intervention kinds (``method@kind`` rows) or a
    cost other than 1 per request."""
    return any("@" in x.method or (x.mean_cost is not None and abs(x.mean_cost - x.mean_interventions) > 1e-9)
               for x in rows)


def eval_section(stage: Stage) -> str:
    """One ``eval-helper`` stage: the method × budget table (success with its 95 % interval and n tasks),
    the plot, and the DP's predicted vs measured."""
    r = stage.result
    assert isinstance(r, EvalHelperResult)
    rows = [row.model_dump() for row in r.rows]
    about = (f"{r.env} · {r.split} split · {r.tasks} tasks · base policy {r.policy} · "
             f"intervention {r.intervention}")
    parts = [title(stage, "Budgets on held-out tasks"), f'<p class="muted">{html.escape(about)}</p>',
             dict_table([{"method": x.method, "C": x.budget, "success": x.success_rate,
                          "95 % interval": success_interval(x), "tasks": x.tasks,
                          "interventions (mean)": x.mean_interventions, "interventions (max)": x.max_interventions,
                          "episodes": x.episodes} for x in r.rows], table_id=stage.table_id("helper-results")),
             img(success_vs_interventions(rows, f"{r.env}: success vs interventions"),
                 "success vs interventions")]
    if priced(r.rows):
        parts.append("<p>Success against the total cost spent per episode: each intervention kind asked alone "
                     "(<code>method@kind</code>) and the mixed policies that choose whom to ask.</p>")
        parts.append(dict_table([{"method": x.method, "C": x.budget, "success": x.success_rate,
                                  "95 % interval": success_interval(x), "tasks": x.tasks,
                                  "cost (mean)": x.mean_cost, "interventions (mean)": x.mean_interventions}
                                 for x in r.rows], table_id=stage.table_id("helper-costs")))
        parts.append(img(success_vs_cost(rows, f"{r.env}: success vs cost"), "success vs cost"))
    if r.ask_steps or r.oracle:
        steps_plot = ask_steps({"ask_steps": r.ask_steps, "oracle": r.oracle, "tasks": r.tasks, "env": r.env})
        if steps_plot:
            note = (" The oracle rows come from a sweep that tried every ask step (it knows each ask's future); "
                    "they are a floor, not a method." if r.oracle else "")
            parts.append(f"<p>Where the helper asks: requests begun at each step, per task.{note}</p>")
            parts.append(img(steps_plot, "ask steps"))
    if r.dp_train:
        parts.append("<p>The DP policy on its own training tasks: predicted (from the table) vs measured.</p>")
        parts.append(dict_table([{"C": x.budget, "predicted success": x.predicted_success,
                                  "measured success": x.success_rate, "95 % interval": success_interval(x),
                                  "tasks": x.tasks,
                                  "predicted interventions": x.predicted_interventions,
                                  "measured interventions": x.mean_interventions} for x in r.dp_train]))
    return "".join(parts)
