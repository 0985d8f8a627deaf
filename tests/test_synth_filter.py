"""The filter: duplicates, identical pairs, over-long and unverifiable pairs are dropped and counted."""

from __future__ import annotations

from agentcritic import envs
from agentcritic.agents import ExpertAgent, RandomAgent, rollout
from agentcritic.synth.filter import filter_pairs
from agentcritic.synth.grounding import grounding_for
from agentcritic.synth.refine import refine_trajectory
from agentcritic.types import Preference, Trajectory


def _pair(env, task: str, seed: int) -> Preference:
    g = grounding_for(env)
    good = refine_trajectory(rollout(env, ExpertAgent(), task, seed=0, meta={"policy": "expert"}), g, None)
    bad = rollout(env, RandomAgent(seed=seed), task, seed=0, meta={"policy": "random"})
    bad.instruction = good.instruction
    return Preference(good.instruction, good, bad, "cross_policy")


def test_filter_drops_and_counts_without_crashing() -> None:
    env = envs.make("game24")
    g = grounding_for(env)
    a, b = _pair(env, "10", 1), _pair(env, "11", 2)
    same = Preference(a.intent, a.chosen, Trajectory.from_dict(a.chosen.to_dict()), "truncate")
    forged = Trajectory.from_dict(b.chosen.to_dict())
    forged.steps = forged.steps[:-1]  # claims to be a grounded positive but never answers
    unverified = Preference(b.intent, forged, b.rejected, "edit:step")
    long = _pair(env, "12", 3)
    long.rejected.steps = long.rejected.steps * 20
    prefs = [a, a, b, same, unverified, long]
    kept, stats = filter_pairs(prefs, g, max_steps=30, max_chars=100_000)
    assert [p.chosen.task_id for p in kept] == ["10", "11"]
    assert stats["dropped"] == {"duplicate": 1, "identical": 1, "unverified_positive": 1, "too_many_steps": 1}
    assert stats["verification"] == {"checked": 3, "verified": 2, "rate": round(2 / 3, 4)}
    assert all(p.chosen.meta["verified"] for p in kept)
    kept, stats = filter_pairs([a, b], g, max_steps=30, max_chars=200)
    assert kept == [] and stats["dropped"] == {"too_long": 2}
    kept, stats = filter_pairs([], g, max_steps=30, max_chars=200)
    assert stats["pairs"] == 0 and stats["lengths"]["chosen"]["steps_max"] == 0
