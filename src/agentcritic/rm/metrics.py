"""Evaluation numbers for reward models, in NumPy only (no scikit-learn).

- pairwise accuracy (overall, per ``Preference.source``), margins and score histograms for the
  outcome RM (armap.md §3 "Report");
- AUROC, Brier score, log loss and reliability-plot bins for the process RM (selfreg.md Phase 2a).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def pairwise_accuracy(chosen: Sequence[float], rejected: Sequence[float]) -> float:
    """Share of pairs ranked right; a tie counts half (a constant model scores 0.5, not 0)."""
    c, r = np.asarray(chosen, dtype=np.float64), np.asarray(rejected, dtype=np.float64)
    if c.shape != r.shape:
        raise ValueError(f"{c.shape} chosen scores vs {r.shape} rejected scores")
    if c.size == 0:
        return float("nan")
    return float(np.mean((c > r) + 0.5 * (c == r)))


def histogram(values: Sequence[float], edges: np.ndarray) -> list[int]:
    return np.histogram(np.asarray(values, dtype=np.float64), bins=edges)[0].astype(int).tolist()


def preference_report(
    chosen: Sequence[float],
    rejected: Sequence[float],
    sources: Sequence[str] | None = None,
    bins: int = 20,
) -> dict[str, Any]:
    """Accuracy overall and per source, mean margin, and chosen-vs-rejected score histograms."""
    c, r = np.asarray(chosen, dtype=np.float64), np.asarray(rejected, dtype=np.float64)
    report: dict[str, Any] = {
        "n": int(c.size),
        "accuracy": pairwise_accuracy(c, r),
        "mean_margin": float(np.mean(c - r)) if c.size else float("nan"),
        "mean_chosen": float(np.mean(c)) if c.size else float("nan"),
        "mean_rejected": float(np.mean(r)) if c.size else float("nan"),
    }
    if sources is not None:
        src = np.asarray(list(sources), dtype=object)
        report["per_source"] = {
            str(s): {
                "n": int(np.sum(src == s)),
                "accuracy": pairwise_accuracy(c[src == s], r[src == s]),
                "mean_margin": float(np.mean(c[src == s] - r[src == s])),
            }
            for s in sorted(set(src.tolist()))
        }
    if c.size:
        lo, hi = float(min(c.min(), r.min())), float(max(c.max(), r.max()))
        if hi <= lo:
            hi = lo + 1e-6
        edges = np.linspace(lo, hi, bins + 1)
        report["histogram"] = {"edges": edges.tolist(), "chosen": histogram(c, edges), "rejected": histogram(r, edges)}
    return report


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their mean rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(xs)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(x)]))
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return ranks


def auroc(scores: Sequence[float], labels: Sequence[float]) -> float:
    """Area under the ROC curve (Mann–Whitney U with tie correction); labels are 0/1 (≥0.5 → 1)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64) >= 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def brier(probs: Sequence[float], labels: Sequence[float]) -> float:
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    return float(np.mean((p - y) ** 2)) if p.size else float("nan")


def log_loss(probs: Sequence[float], labels: Sequence[float], eps: float = 1e-7) -> float:
    p = np.clip(np.asarray(probs, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if p.size else float("nan")


def reliability(probs: Sequence[float], labels: Sequence[float], bins: int = 10) -> dict[str, Any]:
    """Reliability-plot data: equal-width bins of predicted P(success) vs the observed rate.

    Returns ``{"bins": [{"lo", "hi", "count", "mean_predicted", "observed"}, ...], "ece": float}``;
    empty bins have ``count`` 0 and None for the means. ECE is the count-weighted mean gap.
    """
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        sel = idx == b
        count = int(sel.sum())
        if count:
            mp, obs = float(p[sel].mean()), float(y[sel].mean())
            ece += count * abs(mp - obs)
        else:
            mp = obs = None
        rows.append(
            {"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": count, "mean_predicted": mp, "observed": obs}
        )
    return {"bins": rows, "ece": float(ece / max(1, p.size))}


def classification_report(
    probs: Sequence[float], labels: Sequence[float], bins: int = 10, threshold: float = 0.5
) -> dict[str, Any]:
    """Everything the PRM reports: AUROC, accuracy at ``threshold``, Brier, log loss, reliability."""
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    return {
        "n": int(p.size),
        "positive_rate": float(np.mean(y >= 0.5)) if p.size else float("nan"),
        "auroc": auroc(p, y),
        "accuracy": float(np.mean((p >= threshold) == (y >= 0.5))) if p.size else float("nan"),
        "brier": brier(p, y),
        "log_loss": log_loss(p, y),
        "reliability": reliability(p, y, bins),
    }
