"""The published method by default: no expert explores unless asked, game24 positives without the
solver (hindsight targets "make N"), and positives and pairs counted per explorer and intent source."""

from __future__ import annotations

import json
import random
import re
import tomllib
from collections import Counter
from importlib import resources

import pytest
from synth_checks import check_pairs_in_env, check_stats_match_file

from agentcritic import envs
from agentcritic.envs.game24 import hindsight_task, load_puzzles, parse_task
from agentcritic.synth import SynthConfig, read_preferences, synthesize
from agentcritic.synth.grounding import FULFILLED, grounding_for
from agentcritic.synth.llm_negatives import has_error, rule_corruption
from agentcritic.synth.negatives import cross_policy_pairs, group_by_task, negatives_for
from agentcritic.synth.pipeline import explore_jobs
from agentcritic.synth.refine import refine_trajectory
from agentcritic.synth.replay import execute

PUZZLE = "100"  # 4 5 11 12


def _played(steps: list[str], policy: str = "random"):
    """Puzzle 100 played with ``steps`` (each the admissible step starting so) and the env's answer line."""
    env = envs.make("game24")
    actions: list[str] = []
    for start in steps:
        _, info = env.restore(actions, task_id=PUZZLE)
        actions.append(next(a for a in info["admissible_actions"] if a.startswith(start)))
    _, info = env.restore(actions, task_id=PUZZLE)
    actions += info["admissible_actions"]  # the answer line "… = 24" of the steps taken
    traj, _ = execute(env, PUZZLE, 0, actions, instruction=env.instruction,
                      meta={"key": f"{PUZZLE}#{policy}", "policy": policy, "explorer": "random"})
    return env, traj


def test_synthesis_defaults_have_no_expert_explorer() -> None:
    cfg = SynthConfig(env="game24", tasks=3)
    assert cfg.guided_per_task == 0
    jobs = explore_jobs(cfg, ["1", "2", "3"])
    assert {job.payload.explorer for job in jobs} == {cfg.explorer} and cfg.explorer != "expert"


def _stage_lines(text: str) -> list[list[str]]:
    return [block.splitlines() for block in text.split("[[stages]]")[1:]]


@pytest.mark.parametrize("name", sorted(p.name for p in resources.files("agentcritic").joinpath("configs").iterdir()
                                        if p.name.endswith(".toml")))
def test_a_shipped_config_that_keeps_the_expert_says_why(name: str) -> None:
    text = resources.files("agentcritic").joinpath("configs", name).read_text()
    stages = tomllib.loads(text).get("stages", [])
    for stage, lines in zip(stages, _stage_lines(text), strict=True):
        if stage.get("kind") != "synthesize" or not stage.get("guided_per_task", 0):
            continue
        assert name != "demo.toml", f"the demo must run the method as published ({stage['name']})"
        line = next(line for line in lines if line.startswith("guided_per_task"))
        assert "#" in line and "oracle" in line, (name, stage["name"], line)


def test_hindsight_makes_a_verified_positive_for_the_number_reached() -> None:
    env, traj = _played(["4 + 5", "11 + 12", "9 + 23"])  # 9, 23 -> 32
    assert not traj.success and traj.actions[-1].endswith("= 24")
    g = grounding_for(env)
    out = refine_trajectory(traj, g, None)
    assert out.meta["intent_source"] == "hindsight" and out.meta["positive"] and out.success
    assert out.task_id == hindsight_task(PUZZLE, 32) == "100@32" and parse_task(out.task_id) == (100, 32)
    assert "obtain 32" in out.instruction and "Input: 4 5 11 12" in out.instruction
    assert out.actions[:3] == traj.actions[:3] and out.actions[-1].endswith("= 32")
    assert out.meta["hindsight"]["from_task"] == PUZZLE and out.meta["exploring_score"] == 0.0
    assert out.meta["goal"]["target"] == 32 and g.judge(out, out.meta["goal"]) >= FULFILLED
    # the same trajectory with hindsight off, or ending on a fraction, is no positive
    assert refine_trajectory(traj, g, None, hindsight=False).meta["intent_source"] == "none"
    _, fraction = _played(["4 / 5", "11 + 12", "4/5 + 23"])
    assert refine_trajectory(fraction, g, None).meta["intent_source"] == "none"


def test_game24_hindsight_tasks_are_judged_against_their_target() -> None:
    env = envs.make("game24")
    for bad in ("100@", "100@-3", "100@024", "5000@7", "x@7", "100@1/2"):
        assert not env.is_task_id(bad), bad
    assert not any("@" in t for split in env.splits for t in env.task_ids(split))
    obs, info = env.restore(["4 + 5 = 9 (left: 9 11 12)", "11 + 12 = 23 (left: 9 23)", "9 + 23 = 32 (left: 32)"],
                            task_id="100@32")
    assert info["admissible_actions"] == ["Answer: 4 + 5 + 11 + 12 = 32"]
    assert env.expert_action() == "Answer: 4 + 5 + 11 + 12 = 32"  # the expert only writes the answer for N
    env.step("Answer: 4 + 5 + 11 + 12 = 24")
    assert not env.success  # the claim must be the target
    env.restore([], task_id="100@32")
    assert env.expert_action() is None  # the solver knows 24 only
    env.restore(["4 + 5 = 9 (left: 9 11 12)", "11 + 12 = 23 (left: 9 23)", "9 + 23 = 32 (left: 32)"], task_id="100@32")
    env.step("Answer: 4 + 5 + 11 + 12 = 24")
    assert not env.success  # the claim must be the target
    env.restore(["Answer: (12 - 4) * (11 - 5) = 48"], task_id="100@48")
    assert env.success and env.score == 1.0
    env.restore(["Answer: (12 - 4) * (11 - 5) = 48"], task_id="100")
    assert not env.success


def test_negatives_of_a_hindsight_positive_miss_its_target() -> None:
    env, traj = _played(["4 + 5", "11 + 12", "9 + 23"])
    g = grounding_for(env)
    positive = refine_trajectory(traj, g, None)
    pairs, counts = negatives_for(positive, g, None, {
        "sources": ["edit", "llm_negative", "truncate"], "edits_per_positive": 2, "llm_negatives_per_positive": 4},
        seed=1)
    seen = Counter(p.source for p in pairs)
    assert seen["edit:step"] > 0 and seen["llm_negative"] == 4 and seen["truncate"] == 1, (seen, counts)
    for p in pairs:
        assert p.rejected.task_id == "100@32" and p.intent == positive.instruction
        assert g.judge(p.rejected, positive.meta["goal"]) < FULFILLED, p.rejected.actions
        if p.source == "llm_negative":
            assert has_error(p.rejected.meta["error_type"], p.rejected.actions, load_puzzles()[100], 32)
    # a rule-made error for N is judged against N, not 24
    lines = rule_corruption("wrong_arithmetic", positive.actions, load_puzzles()[100], random.Random(0), target=32)
    assert lines is not None and lines[-1].endswith("= 32") and not has_error("wrong_arithmetic", positive.actions,
                                                                               load_puzzles()[100], 32)


def test_cross_policy_pairs_a_hindsight_positive_with_the_other_explorer_posed_as_its_task() -> None:
    env, a = _played(["4 + 5", "11 + 12", "9 + 23"], policy="t1")  # 32
    _, b = _played(["12 - 4", "11 - 5", "6 * 8"], policy="t0.3")  # 48
    g = grounding_for(env)
    pos_a, pos_b = (refine_trajectory(t, g, None) for t in (a, b))
    assert (pos_a.task_id, pos_b.task_id) == ("100@32", "100@48")
    groups = group_by_task([pos_a, pos_b])
    assert list(groups) == [PUZZLE]  # the twins are grouped with the puzzle they were explored on
    pairs, counts = cross_policy_pairs(groups[PUZZLE], g, limit=10, rng=random.Random(0))
    by_intent = {p.intent: p for p in pairs}
    assert len(pairs) == 2 and counts["cross_policy:tie"] == 1  # the puzzle's own "24": both missed it
    for pos, other in ((pos_a, b), (pos_b, a)):
        pair = by_intent[pos.instruction]
        target = pos.meta["goal"]["target"]
        assert pair.chosen.actions == pos.actions and pair.chosen.success
        assert pair.rejected.task_id == pos.task_id and pair.rejected.instruction == pos.instruction
        assert pair.rejected.actions[:3] == other.actions[:3]
        assert pair.rejected.actions[-1].endswith(f"= {target}")  # the answer claims the intent's number
        assert not pair.rejected.success and g.judge(pair.rejected, pos.meta["goal"]) < FULFILLED
        assert pair.rejected.meta["negative"] == "cross_policy"


@pytest.fixture(scope="module")
def random_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("published") / "run"
    # the refiner off (no rephrase, no LLM intents, rule-made llm_negatives): no LLM at all
    cfg = SynthConfig(env="game24", tasks=6, trajectories_per_task=3, explorer="random", rephrase=False,
                      llm_intents=False, llm_negative_llm=False, seed=5)
    stats = synthesize(cfg, out, progress=False)
    return out, stats


def test_random_exploration_of_game24_yields_verified_pairs_without_the_solver(random_run) -> None:
    out, stats = random_run
    prefs = read_preferences(out / "preferences.jsonl")
    assert stats["pairs"] > 0 and stats["verification"]["rate"] == 1.0
    assert stats["trajectories"]["per_policy"] == {"random": 18}
    seen = check_pairs_in_env(envs.make("game24"), prefs)
    assert seen["edit:step"] > 0 and seen["llm_negative"] > 0 and seen["truncate"] > 0
    assert stats["by_intent_source"]["positives"].get("hindsight", 0) > 0
    assert stats["oracle_assisted"]["pairs"] == 0 and set(stats["by_explorer"]["pairs"]) == {"random"}


def test_stats_per_explorer_and_intent_source_count_the_file(random_run) -> None:
    stats = check_stats_match_file(random_run[0])
    refined = [json.loads(line)["record"] for line in (random_run[0] / "refine.jsonl").read_text().splitlines()]
    positives = [t for t in refined if t["meta"].get("positive")]
    assert stats["trajectories"]["positives"] == len(positives)
    assert stats["by_intent_source"]["positives"] == dict(Counter(t["meta"]["intent_source"] for t in positives))


def test_oracle_assisted_pairs_are_counted_and_named(tmp_path) -> None:
    from agentcritic.cli.synth_commands import provenance_lines
    from agentcritic.report.armap import synth_heading
    from agentcritic.stage_results import SynthesizeResult

    cfg = SynthConfig(env="game24", tasks=3, trajectories_per_task=1, explorer="random", guided_per_task=2,
                      guided_eps=0.0, rephrase=False, llm_intents=False, llm_negative_llm=False, seed=2)
    stats = synthesize(cfg, tmp_path / "run", progress=False)
    check_stats_match_file(tmp_path / "run")
    oracle = stats["oracle_assisted"]["pairs"]
    assert oracle > 0 and oracle == stats["by_explorer"]["pairs"]["expert"]
    result = SynthesizeResult.from_summary(stats)
    assert result.oracle_pairs == oracle and result.by_explorer == stats["by_explorer"]
    assert re.search(rf"oracle-assisted \({oracle} of {stats['pairs']} pairs", synth_heading(result))
    assert any("oracle-assisted" in line for line in provenance_lines(stats))
    plain = SynthesizeResult.from_summary({**stats, "oracle_assisted": {"pairs": 0}})
    assert "oracle" not in synth_heading(plain)
