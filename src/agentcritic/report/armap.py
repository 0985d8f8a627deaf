"""The report's sections of the ARMAP stages: ``evaluate`` (the results table, its plots, example
trajectories), ``rollout``, ``synthesize``, ``train-rm`` and ``eval-rm``.

Each section renderer takes one finished :class:`~agentcritic.report.parts.Stage` and reads its
typed result and the data files the result names.
"""

from __future__ import annotations

import html
from typing import Any

from agentcritic.report.parts import Stage, details, head, img, read_json, title
from agentcritic.report.plots import method_bars, named_bars, rm_vs_env, score_histograms, score_vs_cost
from agentcritic.report.tables import dict_table, results_table, to_html
from agentcritic.stage_results import (
    EvalRMResult,
    EvaluateResult,
    RolloutResult,
    SynthesizeResult,
    TrainRMResult,
)


def evaluation_records(stage: Stage) -> list[dict[str, Any]]:
    """The evaluation records of an ``evaluate`` stage."""
    result = stage.result
    assert isinstance(result, EvaluateResult)
    return stage.shard(result.results)


def evaluate_section(stage: Stage) -> str:
    """One ``evaluate`` stage: the paper's table (policy × method by env metric, cost per task) and plots."""
    result = stage.result
    assert isinstance(result, EvaluateResult)
    recs = evaluation_records(stage)
    about = " · ".join([f"{result.records} records", *([f"policy {result.policy}"] if result.policy else []),
                        *([f"envs {', '.join(result.envs)}"] if result.envs else [])])
    parts = [title(stage, "Evaluation"), f'<p class="muted">{html.escape(about)}</p>']
    if not recs:
        return "".join([*parts, "<p>(no records)</p>"])
    table = results_table(recs)
    parts += [
        '<p class="muted">Rows: policy × method; env columns are means over tasks ×100 (success in %) with '
        "their 95 % interval and n tasks, as <code>mean (low–high) n=tasks</code>: Wilson for success, a "
        "bootstrap for rewards, a task's seeds averaged first. Cost columns are means per task. Sampling is the "
        "mean of its N samples; its oracle line (best of N by the env's own reward) is not a method.</p>",
        to_html(table, table_id=stage.table_id("results")),
        img(method_bars(table), "methods per env metric"),
        img(score_vs_cost(recs), "score vs cost"),
        img(rm_vs_env(recs), "reward-model score vs env reward"),
    ]
    return "".join(parts)


def rollout_section(stage: Stage) -> str:
    """One ``rollout`` stage: episodes, success, score and steps of one policy."""
    r = stage.result
    assert isinstance(r, RolloutResult)
    return title(stage, "Rollouts") + head({
        "env": r.env, "split": r.split, "policy": r.policy, "episodes": r.episodes, "success rate": r.success_rate,
        "mean score": r.mean_score, "mean steps": r.mean_steps, "invalid actions": r.invalid_actions,
    })


def synth_heading(r: SynthesizeResult) -> str:
    """``Synthesis``, named oracle-assisted when any pair's positive came from the env's expert."""
    if r.oracle_pairs:
        return f"Synthesis, oracle-assisted ({r.oracle_pairs} of {r.pairs} pairs from the env's expert)"
    return "Synthesis"


def synth_section(stage: Stage) -> str:
    """One ``synthesize`` stage: headline counts, pairs per negative source (table and bars), positives and
    pairs per explorer and per intent source, all counters."""
    r = stage.result
    assert isinstance(r, SynthesizeResult)
    parts = [title(stage, synth_heading(r)), head({
        "env": r.env, "pairs": r.pairs, "explored": r.explored, "positives": r.positives,
        "verification rate": r.verification_rate, "candidates": r.candidates,
    })]
    for what, counts in (("explorer", r.by_explorer), ("intent source", r.by_intent_source)):
        names = sorted(set(counts.get("positives", {})) | set(counts.get("pairs", {})))
        if names:
            parts.append(dict_table([{what: n, "positives": counts.get("positives", {}).get(n, 0),
                                      "pairs": counts.get("pairs", {}).get(n, 0)} for n in names],
                                    [what, "positives", "pairs"]))
    if r.per_source:
        parts.append(dict_table([{"source": k, "pairs": v} for k, v in r.per_source.items()], ["source", "pairs"]))
        parts.append(img(named_bars(dict(r.per_source), f"{r.env}: pairs per negative source", "pairs"),
                         f"synthesis pairs per source {stage.name}"))
    stats = stage.path(r.stats)
    if stats.is_file():
        parts.append(details(read_json(stats)))
    return "".join(parts)


def train_rm_section(stage: Stage) -> str:
    """One ``train-rm`` stage: the data it trained on and its held-out accuracy per negative source."""
    r = stage.result
    assert isinstance(r, TrainRMResult)
    parts = [title(stage, "Reward model training"), head({
        "training pairs": r.n_train, "held-out pairs": r.n_heldout, "held-out accuracy": r.heldout_accuracy,
        "steps": r.steps, "final loss": r.final_loss,
    })]
    metrics = stage.path(r.metrics)
    held = (read_json(metrics).get("eval") or {}) if metrics.is_file() else {}
    per_source = held.get("per_source")
    if isinstance(per_source, dict) and per_source:
        parts.append(_groups(per_source, "source"))
    return "".join(parts)


def eval_rm_section(stage: Stage) -> str:
    """One ``eval-rm`` stage: accuracy overall, per source, env, explorer and intent source, cross-domain, histograms."""
    r = stage.result
    assert isinstance(r, EvalRMResult)
    data = read_json(stage.path(r.report))
    parts = [title(stage, "Reward model accuracy"), head({
        "n": r.pairs, "accuracy": r.accuracy, "mean_margin": r.mean_margin,
        "mean_chosen": data.get("mean_chosen"), "mean_rejected": data.get("mean_rejected"),
    })]
    for key, label in (("per_source", "source"), ("per_env", "env"), ("per_explorer", "explorer"),
                       ("per_intent_source", "intent source")):
        groups = data.get(key)
        if isinstance(groups, dict) and groups:
            parts.append(_groups(groups, label))
            if key == "per_source":
                acc = {k: v["accuracy"] for k, v in groups.items()
                       if isinstance(v, dict) and v.get("accuracy") is not None}
                parts.append(img(named_bars(acc, "held-out pairwise accuracy per negative source", "accuracy"),
                                 f"RM accuracy per source {stage.name}"))
    cross = data.get("cross_domain")
    if isinstance(cross, dict):
        parts.append(f"<p>Cross-domain (envs not trained on: {html.escape(', '.join(cross.get('envs', [])))}): "
                     f"accuracy {cross.get('accuracy', 0):.3f} on {cross.get('n')} pairs</p>")
    parts.append(img(score_histograms(data.get("histogram")), f"RM score histograms {stage.name}"))
    parts.append(details(data, skip=("histogram",)))
    return "".join(parts)


def _groups(groups: dict[str, Any], label: str) -> str:
    rows = [{label: k, **{f: v.get(f) for f in ("n", "accuracy", "mean_margin")}}
            for k, v in groups.items() if isinstance(v, dict)]
    return dict_table(rows, [label, "n", "accuracy", "mean_margin"])


def example_trajectories(recs: list[dict[str, Any]], tasks: int = 3, max_steps: int = 12) -> str:
    """The same task under different methods, side by side; tasks where methods disagree most first."""
    by_task: dict[tuple[str, str, str, str], dict[str, dict[str, Any]]] = {}
    for r in recs:
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
