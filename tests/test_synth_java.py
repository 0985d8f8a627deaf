"""Reward-data synthesis on the JVM envs (ScienceWorld, TextWorldExpress) with the scripted LM."""

from __future__ import annotations

import pytest
from synth_checks import check_pairs_in_env, check_stats_match_file

from agentcritic import envs
from agentcritic.synth import SynthConfig, read_preferences, synthesize

DESCRIBE = {"answers": {"Rewrite this instruction": "",
                        "actions fulfilled": ["Walk around the house and look at things.", "", "@@ 12 ##"]}}


def _run(tmp_path, **kw):
    cfg = SynthConfig(trajectories_per_task=2, explorer="random", guided_per_task=2, refiner="scripted",
                      refiner_llm=DESCRIBE, seed=0, **kw)
    out = tmp_path / "run"
    stats = synthesize(cfg, out, progress=False)
    return out, stats, cfg


@pytest.mark.java
@pytest.mark.slow
def test_textworld_synthesis(tmp_path) -> None:
    out, stats, cfg = _run(tmp_path, env="textworld", tasks=3, guided_eps=0.0)
    env = envs.make("textworld")
    try:
        prefs = read_preferences(out / "preferences.jsonl")
        seen = check_pairs_in_env(env, prefs)
    finally:
        env.close()
    assert seen["edit:step"] > 0 and seen["truncate"] > 0 and seen["cross_policy"] > 0
    assert stats["verification"]["rate"] == 1.0
    check_stats_match_file(out)
    # LLM-written intents for unfinished episodes; the empty and garbage answers are counted
    sources = stats["intent_source"]
    assert sources.get("llm", 0) > 0 and sources.get("template", 0) > 0
    assert set(stats["refiner_failures"]["llm_intent"]) <= {"empty", "garbage"}
    assert sum(stats["refiner_failures"]["llm_intent"].values()) > 0
    again = synthesize(cfg, out, progress=False)
    assert again["per_source"] == stats["per_source"]


@pytest.mark.java
@pytest.mark.slow
def test_scienceworld_synthesis(tmp_path) -> None:
    kwargs = {"tasks": ["find-animal"], "max_steps": 30}
    out, stats, _ = _run(tmp_path, env="scienceworld", env_kwargs=kwargs, tasks=2, guided_eps=0.0)
    env = envs.make("scienceworld", **kwargs)
    try:
        prefs = read_preferences(out / "preferences.jsonl")
        seen = check_pairs_in_env(env, prefs)
    finally:
        env.close()
    assert seen["edit:step"] > 0 and seen["truncate"] > 0
    assert stats["verification"]["checked"] > 0 and stats["verification"]["rate"] == 1.0
    check_stats_match_file(out)
