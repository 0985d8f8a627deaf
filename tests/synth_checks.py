"""Checks shared by the synthesis tests: re-judge every pair in the env, independently of synth."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from agentcritic.synth import read_preferences
from agentcritic.synth.grounding import FULFILLED, grounding_for
from agentcritic.types import Preference


def shard_keys(path: Path) -> list[str]:
    return [json.loads(line)["key"] for line in path.read_text().splitlines()]


def check_pairs_in_env(env, prefs: list[Preference]) -> Counter:
    """Every edit:* negative fails in the env, every verified positive succeeds, truncate is shorter,
    cross_policy is ranked by the env and comes from two policies. Returns the sources seen."""
    g = grounding_for(env)
    seen: Counter = Counter()
    for p in prefs:
        seen[p.source] += 1
        goal = p.chosen.meta.get("goal")
        if p.chosen.meta.get("verified"):
            assert g.judge(p.chosen, goal) >= FULFILLED, p.chosen.actions
        if p.source.startswith("edit:"):
            assert goal is not None
            assert g.judge(p.rejected, goal) < FULFILLED, (p.source, p.rejected.actions)
            edit = p.rejected.meta["edit"]
            assert p.chosen.actions[edit["index"]] == edit["from"] != edit["to"] == p.rejected.actions[edit["index"]]
            assert p.rejected.actions[: edit["index"]] == p.chosen.actions[: edit["index"]]
        if p.source == "truncate":
            assert len(p.rejected.steps) < len(p.chosen.steps)
            assert p.rejected.actions == p.chosen.actions[: len(p.rejected.steps)]
        if p.source == "cross_policy":
            assert p.chosen.meta["policy"] != p.rejected.meta["policy"]
            assert p.chosen.score > p.rejected.score
            assert g.reward_of(p.chosen, goal) > g.reward_of(p.rejected, goal)
        assert p.chosen.instruction == p.rejected.instruction == p.intent
    return seen


def check_stats_match_file(out: Path) -> dict:
    stats = json.loads((out / "synth_stats.json").read_text())
    prefs = read_preferences(out / "preferences.jsonl")
    assert stats["pairs"] == len(prefs)
    assert stats["per_source"] == dict(Counter(p.source for p in prefs))
    # pairs per explorer (of the chosen side) and per intent source: a direct count of the file
    explorers = Counter(str(p.chosen.meta.get("explorer") or p.chosen.meta["policy"].split("-")[0]) for p in prefs)
    assert stats["by_explorer"]["pairs"] == dict(explorers)
    assert stats["by_intent_source"]["pairs"] == dict(Counter(p.chosen.meta["intent_source"] for p in prefs))
    assert stats["oracle_assisted"]["pairs"] == explorers["expert"]
    assert sum(stats["by_explorer"]["positives"].values()) == stats["trajectories"]["positives"]
    keys = shard_keys(out / "explore.jsonl")
    assert len(keys) == len(set(keys)) == stats["trajectories"]["explored"]
    return stats
