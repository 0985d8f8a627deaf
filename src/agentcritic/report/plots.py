"""Every figure of agentcritic (matplotlib, Agg backend; imported only when plotting).

Stages write data; the figures are drawn here: the run report's as inline PNG data URIs (each
returns ``data:image/png;base64,…`` or None when there is nothing to plot, so the report shows a
plot only where there is data behind it), and the PNG files the commands write beside their data
(``eval-rm --plot``: :func:`write_score_histograms`).
"""

from __future__ import annotations

import base64
import io
import statistics
from typing import Any

from agentcritic.report.tables import ResultsTable


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def to_data_uri(fig: Any) -> str:
    """Render ``fig`` to an inline PNG and close it."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def save_png(fig: Any, path: Any) -> Any:
    """Write ``fig`` to ``path`` atomically (a temporary file, then a rename) and close it."""
    from pathlib import Path

    path = Path(path)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    pyplot().close(fig)
    tmp.replace(path)
    return path


def method_bars(table: ResultsTable) -> str | None:
    """Grouped bars: one group per env metric column, one bar per policy × method."""
    rows = [r for r in table.rows if not r.oracle]
    if not rows or not table.columns:
        return None
    plt = pyplot()
    labels = [c.label for c in table.columns]
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(labels) + 0.3 * len(rows)), 4.0))
    for i, row in enumerate(rows):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(labels))]
        ys = [row.values.get(label) or 0.0 for label in labels]
        name = row.method if len({r.policy for r in rows}) == 1 else f"{row.policy} · {row.method}"
        ax.bar(xs, ys, width=width, label=name)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=15, ha="right")
    ax.set_ylabel("×100 / %")
    ax.set_title("Methods per environment metric")
    ax.legend(fontsize=8, ncol=min(5, len(rows)), loc="upper center", bbox_to_anchor=(0.5, -0.25))
    ax.grid(axis="y", alpha=0.3)
    return to_data_uri(fig)


def _groups(records: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault((r["env"], r["policy"], r["method"]), []).append(r)
    return out


def score_vs_cost(records: list[dict[str, Any]]) -> str | None:
    """Mean env score ×100 against mean cost per task, one point per method, one panel per env.

    The cost axis is LLM calls per task where the policy calls an LLM, else seconds per task.
    """
    if not records:
        return None
    plt = pyplot()
    use_calls = any((r.get("cost") or {}).get("llm_calls", 0) for r in records)
    cost_key, cost_label = ("llm_calls", "LLM calls per task") if use_calls else ("seconds", "seconds per task")
    envs = list(dict.fromkeys(r["env"] for r in records))
    fig, axes = plt.subplots(1, len(envs), figsize=(4.2 * len(envs), 3.6), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for (e, policy, method), recs in _groups(records).items():
            if e != env:
                continue
            x = statistics.fmean(float((r.get("cost") or {}).get(cost_key, 0.0)) for r in recs)
            y = 100 * statistics.fmean(float(r["score"]) for r in recs)
            ax.scatter([x], [y], s=40)
            ax.annotate(method, (x, y), fontsize=8, xytext=(4, 3), textcoords="offset points")
        ax.set_title(env)
        ax.set_xlabel(cost_label)
        ax.set_ylabel("mean env score ×100")
        ax.grid(alpha=0.3)
    fig.suptitle("Score vs cost")
    return to_data_uri(fig)


def rm_vs_env(records: list[dict[str, Any]]) -> str | None:
    """Target (reward-model) score against the env's reward for every scored trajectory."""
    points: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        if r.get("rm_score") is not None and r.get("planner") != "sampling":
            points.setdefault(r["env"], []).append((float(r["rm_score"]), float(r["trajectory"].get("score") or 0.0)))
        for c in r.get("candidates") or []:
            if c.get("rm_score") is not None:
                points.setdefault(r["env"], []).append((float(c["rm_score"]), float(c["score"])))
    if not points:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    for env, pts in points.items():
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, alpha=0.6, label=f"{env} ({len(pts)})")
    ax.set_xlabel("target (RM) score")
    ax.set_ylabel("env reward")
    ax.set_title("Reward-model score vs env reward")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return to_data_uri(fig)


def named_bars(values: dict[str, float], title: str, ylabel: str) -> str | None:
    """Horizontal bars of ``values`` (e.g. preference pairs per negative source)."""
    values = {k: float(v) for k, v in values.items() if isinstance(v, (int, float))}
    if not values:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 0.4 * len(values) + 1.2))
    names = list(values)
    ax.barh(names, [values[n] for n in names])
    ax.invert_yaxis()
    ax.set_xlabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return to_data_uri(fig)


def score_histogram_figure(histogram: dict[str, Any], title: str = "Held-out RM scores: chosen vs rejected") -> Any:
    """Reward-model scores of chosen vs rejected pairs (an ``rm_eval.json`` histogram) as a figure."""
    edges = [float(e) for e in histogram["edges"]]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=120)
    widths = [b - a for a, b in zip(edges, edges[1:])]
    ax.bar(edges[:-1], histogram["chosen"], width=widths, align="edge", alpha=0.6, label="chosen")
    ax.bar(edges[:-1], histogram["rejected"], width=widths, align="edge", alpha=0.6, label="rejected")
    ax.set_xlabel("RM score")
    ax.set_ylabel("pairs")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def write_score_histograms(report: dict[str, Any], path: Any, title: str = "reward model scores") -> Any:
    """The chosen vs rejected score histograms of an ``rm_eval.json`` report as a PNG file at ``path``.

    Raises ValueError when the report has no histogram (no pairs were scored).
    """
    hist = report.get("histogram")
    if not hist:
        raise ValueError("the report has no histogram (no pairs were scored)")
    accuracy = report.get("accuracy")
    shown = "—" if not isinstance(accuracy, (int, float)) else f"{accuracy:.3f}"
    return save_png(score_histogram_figure(hist, f"{title} (accuracy {shown}, n={report.get('n')})"), path)


def score_histograms(histogram: Any) -> str | None:
    """:func:`score_histogram_figure` inline, or None where the histogram is missing or malformed."""
    if not isinstance(histogram, dict) or not histogram.get("edges"):
        return None
    bins = len(histogram["edges"]) - 1
    if len(histogram.get("chosen") or []) != bins or len(histogram.get("rejected") or []) != bins:
        return None
    return to_data_uri(score_histogram_figure(histogram))


def _budget_curves(rows: list[dict[str, Any]], x_key: str, xlabel: str, title: str, mixed_bold: bool = False) -> Any:
    """One line per method through its budgets: success rate against ``x_key``, each point marked
    with its budget C; ``mixed_bold`` draws the methods offered every intervention bold and each
    single-kind one (``dp@expert`` …) dashed."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=120)
    for method in dict.fromkeys(r["method"] for r in rows):
        pts = [r for r in rows if r["method"] == method and r.get(x_key) is not None]
        if not pts:
            continue
        xs = [r[x_key] for r in pts]
        ys = [r["success_rate"] for r in pts]
        bold = mixed_bold and "@" not in method and method != "never"
        ax.plot(xs, ys, marker="o", lw=2.0 if bold else 1.2, ls="--" if mixed_bold and not bold else "-",
                label=method)
        for r, x, y in zip(pts, xs, ys, strict=True):
            ax.annotate(f"C={r['budget']}", (x, y), textcoords="offset points", xytext=(3, 3), fontsize=6)
    ax.set(xlabel=xlabel, ylabel="success rate", ylim=(-0.02, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def success_vs_interventions_figure(rows: list[dict[str, Any]], title: str = "") -> Any:
    """One line per method through its budgets: success rate vs mean interventions per episode
    (the rows of ``eval-helper``'s ``results.json``)."""
    return _budget_curves(rows, "mean_interventions", "interventions per episode (mean)",
                          title or "Success vs interventions")


def success_vs_interventions(rows: list[dict[str, Any]], title: str = "") -> str | None:
    """:func:`success_vs_interventions_figure` as an inline PNG (None without rows)."""
    return to_data_uri(success_vs_interventions_figure(rows, title)) if rows else None


def ask_steps_figure(results: dict[str, Any], method: str | None = None) -> Any:
    """Where ``method`` (default: the helper, else the DP) asks at each budget C ≥ 1 — requests begun
    at each step, per task — beside the fewest-asks oracle's steps when the run has one (eval-helper's
    ``results.json``: ``ask_steps``, ``oracle``); None when there is nothing to draw."""
    counts = results.get("ask_steps") or {}
    method = method or next((m for m in ("helper", "dp") if m in counts), None)
    oracle = (results.get("oracle") or {}).get("ask_steps") or {}
    n = max(1, int(results.get("tasks") or 1))
    series = {f"{method} C={b}": h for b, h in (counts.get(method) or {}).items() if b != "0"} if method else {}
    if not series and not oracle:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.0), dpi=120)
    steps = sorted({int(k) for h in [*series.values(), *oracle.values()] for k in h} or {0})
    xs = list(range(min(steps), max(steps) + 1))
    if oracle.get("any single"):
        ax.bar(xs, [oracle["any single"].get(x, oracle["any single"].get(str(x), 0)) / n for x in xs], width=0.8,
               color="lightgrey", label="oracle: every step whose one ask rescues")
    if oracle.get("first"):
        ax.bar(xs, [oracle["first"].get(x, oracle["first"].get(str(x), 0)) / n for x in xs], width=0.4,
               color="black", label="oracle: fewest asks (first set)")
    for label, hist in series.items():
        ax.plot(xs, [hist.get(x, hist.get(str(x), 0)) / n for x in xs], marker="o", lw=1.2, label=label)
    ax.set(xlabel="step of the episode", ylabel="asks per task", title=f"Where {method or 'the oracle'} asks "
           f"({results.get('env', '')}, {n} tasks)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def ask_steps(results: dict[str, Any]) -> str | None:
    """:func:`ask_steps_figure` as an inline PNG (None when there is nothing to draw)."""
    fig = ask_steps_figure(results)
    return to_data_uri(fig) if fig is not None else None


def write_ask_steps(results: dict[str, Any], path: Any) -> Any:
    """:func:`ask_steps_figure` as a PNG file at ``path`` (None when there is nothing to draw)."""
    fig = ask_steps_figure(results)
    return save_png(fig, path) if fig is not None else None


def reliability_figure(bins: list[dict[str, Any]], ece: float | None = None, auroc: float | None = None) -> Any:
    """The reliability plot: mean predicted P(success) per bin vs the observed success rate."""
    plt = pyplot()
    bins = [b for b in bins if b.get("count") and b.get("mean_predicted") is not None]
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    if bins:
        xs = [b["mean_predicted"] for b in bins]
        ys = [b["observed"] for b in bins]
        sizes = [20 + 200 * b["count"] / max(c["count"] for c in bins) for b in bins]
        ax.plot(xs, ys, marker="o", color="tab:blue", lw=1.5, label="PRM (held-out tasks)")
        ax.scatter(xs, ys, s=sizes, color="tab:blue", alpha=0.4)
    title = "PRM reliability (ECE " + (f"{ece:.3f}" if isinstance(ece, (int, float)) else "–")
    title += f", AUROC {auroc:.3f})" if isinstance(auroc, (int, float)) else ")"
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted P(success)", ylabel="observed success rate", title=title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def reliability(bins: list[dict[str, Any]], ece: float | None = None, auroc: float | None = None) -> str | None:
    """:func:`reliability_figure` as an inline PNG (None without bins)."""
    return to_data_uri(reliability_figure(bins, ece, auroc)) if bins else None


def write_success_vs_interventions(rows: list[dict[str, Any]], path: Any, title: str = "") -> Any:
    """:func:`success_vs_interventions_figure` of eval-helper's rows as a PNG file at ``path``."""
    return save_png(success_vs_interventions_figure(rows, title), path)


def success_vs_cost_figure(rows: list[dict[str, Any]], title: str = "") -> Any:
    """One line per method through its budgets: success rate vs mean total cost per episode — with
    several interventions, each single-kind method (``dp@expert`` …) against the mixed one."""
    return _budget_curves(rows, "mean_cost", "total cost per episode (mean)", title or "Success vs cost",
                          mixed_bold=True)


def success_vs_cost(rows: list[dict[str, Any]], title: str = "") -> str | None:
    """:func:`success_vs_cost_figure` as an inline PNG (None without rows)."""
    return to_data_uri(success_vs_cost_figure(rows, title)) if rows else None


def write_success_vs_cost(rows: list[dict[str, Any]], path: Any, title: str = "") -> Any:
    """:func:`success_vs_cost_figure` of eval-helper's rows as a PNG file at ``path``."""
    return save_png(success_vs_cost_figure(rows, title), path)


def write_reliability(metrics: dict[str, Any], path: Any) -> Any:
    """The PRM's reliability plot from train-prm's ``metrics.json`` as a PNG file at ``path``
    (None when the metrics hold no reliability bins: no held-out tasks)."""
    held = metrics.get("eval") or metrics
    from agentcritic.stage_results import find_key

    bins = find_key(held, "reliability")
    if not bins:
        return None
    return save_png(reliability_figure(bins["bins"], bins.get("ece"), find_key(held, "auroc")), path)

