"""Reward-data synthesis on the shop: grounded purchase intents, edits the env confirms, explorer."""

from __future__ import annotations

import random

import pytest
from synth_checks import check_pairs_in_env, check_stats_match_file

from agentcritic import envs
from agentcritic.agents import ExpertAgent, ReActAgent, rollout
from agentcritic.agents.explorer import ExplorerAgent, make_explorer
from agentcritic.synth import SynthConfig, read_preferences, synthesize
from agentcritic.synth.grounding import FULFILLED, grounding_for
from agentcritic.synth.refine import refine_trajectory

REPHRASE = {"answers": {"Rewrite this instruction": "Please buy something nice for me today."}}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop") / "run"
    cfg = SynthConfig(env="shop", tasks=5, trajectories_per_task=2, explorer="random", guided_per_task=2,
                      refiner="scripted", refiner_llm=REPHRASE, seed=1)
    return out, synthesize(cfg, out, progress=False)


@pytest.fixture(scope="module")
def env():
    return envs.make("shop")


def test_edits_fail_and_verified_positives_succeed_in_the_shop(run, env) -> None:
    out, stats = run
    prefs = read_preferences(out / "preferences.jsonl")
    seen = check_pairs_in_env(env, prefs)
    for source in ("edit:product", "edit:option", "truncate", "cross_policy"):
        assert seen[source] > 0, (source, seen)
    assert "llm_negative" not in seen  # game24 only
    assert stats["verification"]["rate"] == 1.0
    for p in prefs:
        if p.source == "edit:option":
            chosen = p.chosen.steps[-1].info["chosen_options"]
            rejected = p.rejected.steps[-1].info.get("chosen_options")
            assert rejected != chosen  # another option value was bought
        if p.source == "edit:product":
            assert p.rejected.steps[-1].info.get("purchased_asin") != p.chosen.steps[-1].info["purchased_asin"]


def test_stats_match_the_file_and_lost_facts_are_counted(run) -> None:
    out, stats = run
    check_stats_match_file(out)
    # the scripted re-phrase drops every grounded fact, so each template positive keeps its template
    assert stats["refiner_failures"]["rephrase"] == {"lost_facts": stats["intent_source"]["template"]}


def test_the_grounded_intent_describes_what_was_bought(env) -> None:
    rng = random.Random(0)
    g = grounding_for(env)
    checked = 0
    for task in env.task_ids("train")[:5]:
        traj = rollout(env, ExplorerAgent(ExpertAgent(), eps=0.3, seed=rng.randrange(99)), task, seed=0)
        outcome = g.outcome(traj, rng)
        bought = traj.steps[-1].info.get("purchased_asin")
        if bought is None:
            assert outcome is None
            continue
        product = env.catalogue.find(bought)
        assert product.type.name in outcome.intent
        assert all(v in outcome.intent for v in traj.steps[-1].info["chosen_options"].values())
        assert f"{outcome.goal['price_upper']:.2f}" in outcome.intent and outcome.goal["price_upper"] >= product.price
        assert g.reward_of(traj, outcome.goal) == pytest.approx(1.0)
        assert g.judge(traj, outcome.goal) >= FULFILLED
        assert g.missing_facts(outcome.intent, outcome) == []
        checked += 1
    assert checked > 0


def test_a_rephrase_that_keeps_the_facts_is_used(env) -> None:
    from agentcritic.llm import load

    traj = rollout(env, ExpertAgent(), env.task_ids("train")[0], seed=0)
    g = grounding_for(env)
    outcome = g.outcome(traj, random.Random(0))
    words = ", ".join(outcome.facts[:-1])
    lm = load("scripted", answers=[f"Get me this: {words}; budget {outcome.facts[-1]} dollars at most."])
    out = refine_trajectory(traj, g, lm, seed=0)
    if out.meta["intent_source"] != "llm_rephrase":  # the seeded draw may differ from ours; re-ask with its facts
        words = ", ".join(out.meta["facts"][:-1])
        lm = load("scripted", answers=[f"Get me this: {words}; budget {out.meta['facts'][-1]} dollars at most."])
        out = refine_trajectory(traj, g, lm, seed=0)
    assert out.meta["intent_source"] == "llm_rephrase" and out.instruction.startswith("Get me this")
    assert out.success and out.meta["exploring_instruction"] == traj.instruction


def test_explorer_mixes_random_steps_and_falls_back_when_the_base_has_no_action(env) -> None:
    task = env.task_ids("train")[0]
    always = rollout(env, ExplorerAgent(ExpertAgent(), eps=1.0, seed=0), task, seed=0)
    assert always.meta["agent"]["random_steps"] == len(always.steps)
    never = rollout(env, ExplorerAgent(ExpertAgent(), eps=0.0, seed=0), task, seed=0)
    assert never.success and never.meta["agent"]["random_steps"] == 0

    class NoAction:
        name = "none"

        def reset(self, *a): ...

        def act(self, *a):
            raise RuntimeError("no idea")

    traj = rollout(env, ExplorerAgent(NoAction(), eps=0.0, seed=0), task, seed=0)
    assert traj.meta["agent"]["fallbacks"] == len(traj.steps) > 0 and "error" not in traj.meta
    with pytest.raises(ValueError, match="unknown explorer policy"):
        make_explorer("scripted")


def test_an_llm_explorer_samples_at_its_temperature(env) -> None:
    from agentcritic.llm import load

    lm = load("scripted", scores=lambda msgs, c: -float(len(c)))  # prefers short actions
    greedy = ExplorerAgent(ReActAgent(lm, temperature=0.0, few_shot=False), eps=0.0, seed=0)
    hot = ExplorerAgent(ReActAgent(lm, temperature=50.0, few_shot=False, seed=1), eps=0.0, seed=1)
    task = env.task_ids("train")[1]
    a = [rollout(env, greedy, task, seed=s).actions for s in range(3)]
    b = [rollout(env, hot, task, seed=s).actions for s in range(3)]
    assert a[0] == a[1] == a[2]
    assert len({tuple(x) for x in b}) > 1
