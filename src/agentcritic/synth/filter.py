"""Filter the pairs: drop duplicates, over-long and unverified pairs (drop, never crash); count.

Verification re-executes every grounded positive (a chosen trajectory whose intent the env can
check) in the env and keeps the pair only when the env's reward against the intent is 1. The
statistics (``synth_stats.json``) count pairs per source, what was dropped and why, intent
sources, LLM fallbacks, the verification rate and the lengths of what was kept.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from typing import Any

from agentcritic.rendering import render
from agentcritic.synth.grounding import FULFILLED, Grounding
from agentcritic.types import Preference, Trajectory


def _pair_key(p: Preference) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    return (" ".join(p.intent.lower().split()), tuple(p.chosen.actions), tuple(p.rejected.actions))


def filter_pairs(
    prefs: list[Preference], grounding: Grounding, *, max_steps: int, max_chars: int, verify: bool = True,
    progress: bool = False,
) -> tuple[list[Preference], dict[str, Any]]:
    """The pairs to keep and the filter's statistics (see the module doc)."""
    from tqdm.auto import tqdm

    kept: list[Preference] = []
    seen: set[tuple] = set()
    dropped: Counter = Counter()
    verdicts: dict[str, bool] = {}
    chars: dict[str, list[int]] = {"chosen": [], "rejected": []}
    for p in tqdm(prefs, desc="filter", disable=not progress, unit="pair", dynamic_ncols=True):
        key = _pair_key(p)
        if p.chosen.actions == p.rejected.actions:
            dropped["identical"] += 1
            continue
        if key in seen:
            dropped["duplicate"] += 1
            continue
        if max(len(p.chosen.steps), len(p.rejected.steps)) > max_steps:
            dropped["too_many_steps"] += 1
            continue
        try:
            texts = [render(p.intent, p.chosen), render(p.intent, p.rejected)]
        except Exception as exc:  # noqa: BLE001 - a record that cannot be rendered is dropped, counted
            dropped[f"unrenderable:{type(exc).__name__}"] += 1
            continue
        if max(map(len, texts)) > max_chars:
            dropped["too_long"] += 1
            continue
        if verify and p.chosen.meta.get("grounded"):
            vkey = json.dumps([p.chosen.task_id, p.chosen.actions, p.chosen.meta.get("goal")], sort_keys=True)
            if vkey not in verdicts:
                verdicts[vkey] = grounding.judge(p.chosen, p.chosen.meta.get("goal")) >= FULFILLED
            if not verdicts[vkey]:
                dropped["unverified_positive"] += 1
                continue
            p.chosen.meta["verified"] = True
        seen.add(key)
        kept.append(p)
        chars["chosen"].append(len(texts[0]))
        chars["rejected"].append(len(texts[1]))
    stats = {
        "pairs": len(kept),
        "per_source": dict(sorted(Counter(p.source for p in kept).items())),
        "dropped": dict(sorted(dropped.items())),
        "verification": {
            "checked": len(verdicts),
            "verified": sum(verdicts.values()),
            "rate": round(sum(verdicts.values()) / len(verdicts), 4) if verdicts else None,
        },
        "lengths": {side: _length_stats([getattr(p, side) for p in kept], chars[side]) for side in chars},
    }
    return kept, stats


def _length_stats(trajs: list[Trajectory], chars: list[int]) -> dict[str, Any]:
    if not trajs:
        return {"steps_mean": 0.0, "steps_max": 0, "chars_mean": 0.0, "chars_max": 0}
    steps = [len(t.steps) for t in trajs]
    return {"steps_mean": round(statistics.fmean(steps), 2), "steps_max": max(steps),
            "chars_mean": round(statistics.fmean(chars), 1), "chars_max": max(chars)}
