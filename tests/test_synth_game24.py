"""Reward-data synthesis on game24 with the scripted LM: pairs re-judged in the env, stats, resume."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from synth_checks import check_pairs_in_env, check_stats_match_file, shard_keys

from agentcritic import envs
from agentcritic.agents import ExpertAgent, rollout
from agentcritic.synth import GAME24_ERRORS, SynthConfig, read_preferences, synthesize
from agentcritic.synth.grounding import grounding_for
from agentcritic.synth.llm_negatives import has_error, rule_corruption
from agentcritic.synth.negatives import negatives_for
from agentcritic.synth.refine import refine_trajectory

# The scripted refiner answers garbage to every negative request and nothing to every rephrase,
# so every LLM path must fall back and be counted.
GARBAGE_LLM = {"answers": {"Rewrite this instruction": "", "with this mistake": "%%% ??? 42"}}


def config(**kw) -> SynthConfig:
    base = dict(env="game24", tasks=4, trajectories_per_task=2, explorer="random", guided_per_task=2,
                guided_eps=0.2, refiner="scripted", refiner_llm=GARBAGE_LLM, seed=3)
    base.update(kw)
    return SynthConfig(**base)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("g24") / "run"
    stats = synthesize(config(), out, progress=False)
    return out, stats


@pytest.fixture(scope="module")
def env():
    return envs.make("game24")


def test_pairs_hold_up_in_the_env(run, env) -> None:
    out, stats = run
    prefs = read_preferences(out / "preferences.jsonl")
    seen = check_pairs_in_env(env, prefs)
    for source in ("edit:step", "llm_negative", "truncate", "cross_policy"):
        assert seen[source] > 0, (source, seen)
    assert stats["verification"]["checked"] > 0 and stats["verification"]["rate"] == 1.0
    # every chosen side of a grounded pair is a solved puzzle
    assert all(p.chosen.success for p in prefs if p.chosen.meta.get("grounded"))


def test_llm_negative_types_are_what_they_say_and_fallbacks_are_counted(run) -> None:
    out, stats = run
    prefs = [p for p in read_preferences(out / "preferences.jsonl") if p.source == "llm_negative"]
    from agentcritic.envs.game24 import load_puzzles, parse_task

    for p in prefs:
        kind = p.rejected.meta["error_type"]
        assert kind in GAME24_ERRORS
        index, target = parse_task(p.chosen.task_id)  # a hindsight positive ("make N") has its own target
        assert has_error(kind, p.rejected.actions, load_puzzles()[index], target)
        assert not p.rejected.success
        assert p.rejected.meta["made_by"] == "rule"  # the scripted LLM only wrote garbage
    failed = sum(v for k, v in stats["negative_counters"].items() if k.startswith("llm_negative:llm_failed"))
    assert failed == stats["negative_counters"]["llm_negative:rule"] + stats["negative_counters"].get(
        "llm_negative:rule_failed", 0)
    assert stats["made_by"]["llm_negative:rule"] == len(prefs)


def test_empty_rephrases_keep_the_template_and_are_counted(run) -> None:
    out, stats = run
    templates = stats["intent_source"]["template"] + stats["intent_source"].get("hindsight", 0)
    assert templates > 0 and not {"llm_rephrase", "hindsight_rephrase"} & set(stats["intent_source"])
    assert stats["refiner_failures"]["rephrase"] == {"empty": templates}


def test_stats_match_the_file(run) -> None:
    check_stats_match_file(run[0])


def test_a_resumed_run_writes_nothing_twice(run) -> None:
    out, stats = run
    before = {name: (out / name).read_text() for name in ("explore.jsonl", "refine.jsonl", "negatives.jsonl")}
    prefs_before = (out / "preferences.jsonl").read_text()
    again = synthesize(config(), out, progress=False)
    for name, text in before.items():
        assert (out / name).read_text() == text
        keys = shard_keys(out / name)
        assert len(keys) == len(set(keys))
    assert (out / "preferences.jsonl").read_text() == prefs_before
    assert again["per_source"] == stats["per_source"]


def test_resume_after_a_torn_line_redoes_only_that_record(tmp_path) -> None:
    cfg = config(tasks=2, negatives=["edit", "truncate"])
    out = tmp_path / "run"
    synthesize(cfg, out, progress=False)
    full = (out / "refine.jsonl").read_text()
    lines = full.splitlines(keepends=True)
    (out / "refine.jsonl").write_text("".join(lines[:-1]) + lines[-1][:20])  # a crash mid-write
    synthesize(cfg, out, progress=False)
    assert (out / "refine.jsonl").read_text() == full


def _solved(task: str = "100"):
    env = envs.make("game24")
    traj = rollout(env, ExpertAgent(), task, seed=0, meta={"key": f"{task}#0", "policy": "expert"})
    return env, traj


def test_rule_corruptions_make_each_error_type() -> None:
    env, traj = _solved()
    from agentcritic.envs.game24 import load_puzzles

    puzzle = load_puzzles()[100]
    rng = random.Random(0)
    for kind in GAME24_ERRORS:
        lines = rule_corruption(kind, traj.actions, puzzle, rng)
        assert lines is not None and has_error(kind, lines, puzzle), kind
        others = [k for k in GAME24_ERRORS if k != kind and k != "wrong_arithmetic"]
        if kind in ("missing_number", "invented_number", "broken_format"):
            assert not any(has_error(k, lines, puzzle) for k in others), (kind, lines)
    assert not has_error("broken_format", traj.actions, puzzle)
    assert not any(has_error(k, traj.actions, puzzle) for k in GAME24_ERRORS)


def test_a_well_formed_llm_negative_is_kept_as_llm() -> None:
    env, traj = _solved()
    from agentcritic.envs.game24 import load_puzzles
    from agentcritic.llm import load

    puzzle = sorted(load_puzzles()[100])
    missing = "Answer: " + " + ".join(map(str, puzzle[:3])) + " = 24"
    lm = load("scripted", answers={"leaves out": f"- {traj.actions[0]}\n- {missing}"}, default="")
    positive = refine_trajectory(traj, grounding_for(env), None)
    pairs, counts = negatives_for(positive, grounding_for(env), lm, {
        "sources": ["llm_negative"], "llm_negatives_per_positive": 4}, seed=0)
    by_kind = {p.rejected.meta["error_type"]: p for p in pairs}
    assert set(by_kind) == set(GAME24_ERRORS)
    assert by_kind["missing_number"].rejected.meta["made_by"] == "llm"
    assert by_kind["missing_number"].rejected.actions == [traj.actions[0], missing]
    assert counts["llm_negative:llm"] == 1 and counts["llm_negative:rule"] == 3
    assert counts["llm_negative:llm_failed:empty"] == 3


def test_rephrase_must_keep_the_numbers() -> None:
    from agentcritic.llm import load

    env, traj = _solved()
    numbers = " ".join(map(str, sorted(__import__("agentcritic.envs.game24", fromlist=["x"]).load_puzzles()[100])))
    good = load("scripted", answers=[f"Combine {numbers} with + - * / so that the result is 24."])
    out = refine_trajectory(traj, grounding_for(env), good)
    assert out.meta["intent_source"] == "llm_rephrase" and numbers in out.instruction
    lost = load("scripted", answers=["Combine these numbers with + - * / so that the result is 24."])
    out = refine_trajectory(traj, grounding_for(env), lost)
    assert out.meta["intent_source"] == "template" and out.meta["rephrase_failure"] == "lost_facts"
    assert out.instruction == traj.instruction
    extra = load("scripted", answers=[f"Combine {numbers} and 7 with + - * / so that the result is 24."])
    assert refine_trajectory(traj, grounding_for(env), extra).meta["rephrase_failure"] == "lost_facts"
    junk = load("scripted", answers=["!!!! #### 12 13"])
    assert refine_trajectory(traj, grounding_for(env), junk).meta["rephrase_failure"] == "garbage"


def test_an_unsolved_trajectory_is_no_positive() -> None:
    from agentcritic.agents import RandomAgent

    env = envs.make("game24")
    traj = rollout(env, RandomAgent(seed=1), "5", seed=0)
    assert not traj.success
    out = refine_trajectory(traj, grounding_for(env), None, hindsight=False)  # hindsight: test_synth_published
    assert out.meta["intent_source"] == "none" and out.meta["positive"] is False


def test_bad_config_is_refused_with_the_field_named() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="negative source"):
        config(negatives=["edit", "paraphrase"])
    with pytest.raises(ValidationError, match="explorer"):
        config(explorer="scripted")
    with pytest.raises(ValidationError, match="nothing to explore"):
        config(trajectories_per_task=0, guided_per_task=0)


def test_counts_per_source_are_plausible(run) -> None:
    import json

    out, stats = run
    assert sum(stats["per_source"].values()) == stats["pairs"]
    assert stats["candidates"] == stats["pairs"] + sum(stats["dropped"].values())
    # per policy: what acted (an expert that never acted is labelled random); per explorer: who was asked
    assert sum(stats["trajectories"]["per_policy"].values()) == 16
    explored = [json.loads(line)["record"] for line in (out / "explore.jsonl").read_text().splitlines()]
    assert Counter(t["meta"]["explorer"] for t in explored) == Counter({"random": 8, "expert": 8})


@pytest.mark.slow
def test_workers_give_the_same_pairs(tmp_path) -> None:
    cfg = config(tasks=3)
    one = synthesize(cfg, tmp_path / "one", progress=False)
    two = synthesize(cfg.model_copy(update={"workers": 2}), tmp_path / "two", progress=False)
    assert (tmp_path / "one" / "preferences.jsonl").read_text() == (tmp_path / "two" / "preferences.jsonl").read_text()
    assert one["per_source"] == two["per_source"]
