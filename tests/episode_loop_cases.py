"""Seeded episodes of every path the episode loop drives, as JSON-able records.

``test_episode_loop.py`` regenerates each case with the code under test and compares it with the
records in ``tests/data/episode_loop/``, which were made by the code *before* the loops were
merged into one. Rewrite them only after a deliberate change of behaviour::

    .venv/bin/python tests/episode_loop_cases.py          # writes tests/data/episode_loop/*.json

Timing fields (``seconds`` anywhere) are dropped: they are the only thing allowed to differ. So is
``error_kind``, which issue 14 added to every failed episode after these records were made (its
own tests, of resuming after an LLM outage, pin it), and the explorer's ``llm_fallbacks`` counter,
which issue 15 added (tests/test_llm_failures.py pins it). The files were rewritten once since
the loops were merged, for a deliberate change: game24 goals name their task and target (issue
15's hindsight targets); every other record stayed identical.
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentcritic import envs, llm
from agentcritic.agents import ExpertAgent, RandomAgent, ReActAgent, rollout
from agentcritic.agents.explorer import ExplorerAgent
from agentcritic.helper.baselines import RandomAsk
from agentcritic.helper.episode import run_helped_episode
from agentcritic.helper.gate import Gate
from agentcritic.helper.interventions import ExpertIntervention, ModelIntervention
from agentcritic.planning import make_planner
from agentcritic.rm.custom import make_target
from agentcritic.synth.grounding import grounding_for
from agentcritic.synth.negatives import negatives_for
from agentcritic.synth.refine import refine_trajectory
from agentcritic.synth.replay import execute

DATA = Path(__file__).parent / "data" / "episode_loop"
IGNORED_FIELDS = ("seconds", "error_kind", "llm_fallbacks")


def without_timings(value: Any) -> Any:
    """``value`` without the fields that may differ (see the module doc), at any depth."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in IGNORED_FIELDS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def _game24_scores(env: Any, bias: str = "") -> Callable[[Any, str], float]:
    """Deterministic log-probs that depend on the prompt and the candidate (not on the env state),
    so a ReAct agent over them acts like a small LM with preferences."""

    def scores(messages: list[dict[str, str]], candidate: str) -> float:
        text = messages[-1]["content"] + bias + candidate
        return -float(sum(map(ord, text)) % 97) / 20.0

    return scores


def _scripted_lm(calls: list[Any], **kwargs: Any) -> Any:
    lm = llm.load("scripted", **kwargs)
    calls.append(lm)
    return lm


def _lm_record(lms: list[Any]) -> list[dict[str, Any]]:
    return [{"calls": len(lm.history), "methods": dict(Counter(h["method"] for h in lm.history))} for lm in lms]


# ---------------------------------------------------------------------------------------- rollout
def rollout_random() -> dict[str, Any]:
    out = []
    for name, task, seed, max_steps in (("game24", "900", 3, None), ("household", "pnp-0120", 1, None),
                                        ("household", "s_obj-0120", 2, 4), ("shop", "test-1", 5, None)):
        env = envs.make(name)
        traj = rollout(env, RandomAgent(seed=seed), task, seed=seed, max_steps=max_steps,
                       meta={"key": f"{task}#{seed}"})
        out.append(traj.to_dict())
    return {"trajectories": out}


def rollout_expert() -> dict[str, Any]:
    env = envs.make("household")
    return {"trajectories": [rollout(env, ExpertAgent(), t, seed=0).to_dict() for t in ("pnp-0120", "s_hum-0120")]}


def rollout_scripted() -> dict[str, Any]:
    game24, household = envs.make("game24"), envs.make("household")
    lms: list[Any] = []
    trajs = []
    for temperature, task, seed in ((0.0, "901", 0), (1.0, "902", 7)):
        agent = ReActAgent(_scripted_lm(lms, scores=_game24_scores(game24)), mode="choose",
                           temperature=temperature, seed=seed)
        trajs.append(rollout(game24, agent, task, seed=seed).to_dict())
    # generate mode: a parsable reply, an unparsable one, then the default; then an LM that runs out
    answers = ["Thought: look first\nAction: look", "I am not sure what to do", "Action: go to countertop 1"]
    agent = ReActAgent(_scripted_lm(lms, answers=answers, default="Action: inventory"), mode="generate",
                       temperature=0.0, seed=3)
    trajs.append(rollout(household, agent, "pnp-0120", seed=3, max_steps=6).to_dict())
    broken = ReActAgent(_scripted_lm(lms, answers=["Action: look"]), mode="generate", seed=4)
    trajs.append(rollout(household, broken, "s_obj-0120", seed=4, max_steps=5).to_dict())
    return {"trajectories": trajs, "lm": _lm_record(lms)}


def explore() -> dict[str, Any]:
    household, shop = envs.make("household"), envs.make("shop")
    lms: list[Any] = []
    trajs = [
        rollout(household, ExplorerAgent(ExpertAgent(), eps=0.3, seed=11), "pnp-0120", seed=2).to_dict(),
        rollout(shop, ExplorerAgent(ExpertAgent(), eps=0.5, seed=5), "test-0", seed=0).to_dict(),
        rollout(household, ExplorerAgent(None, seed=9), "s_hum-0120", seed=1).to_dict(),
    ]
    failing = ReActAgent(_scripted_lm(lms, answers=None), mode="generate", seed=1)  # every call raises
    trajs.append(rollout(household, ExplorerAgent(failing, eps=0.1, seed=3), "s_obj-0120", seed=0,
                         max_steps=6).to_dict())
    return {"trajectories": trajs, "lm": _lm_record(lms)}


# ------------------------------------------------------------------------------- negatives replay
def replay_negatives() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, tasks in (("game24", ("100", "101")), ("household", ("s_obj-0002",)), ("shop", ("train-3",))):
        env = envs.make(name)
        g = grounding_for(env)
        pairs, counts = [], Counter()
        for task in tasks:
            positive = rollout(env, ExpertAgent(), task, seed=0,
                               meta={"key": f"{task}#0", "policy": "expert", "seed": 0})
            positive = refine_trajectory(positive, g, None)
            options = {"sources": ["edit", "truncate"], "edits_per_positive": 2}
            got, c = negatives_for(positive, g, None, options, seed=1)
            pairs += [p.to_dict() for p in got]
            counts += c
        out[name] = {"pairs": pairs, "counts": dict(sorted(counts.items()))}
    # execute() itself: a repair from an index on, a list longer than the episode, seed None
    env = envs.make("game24")
    expert = rollout(env, ExpertAgent(), "100", seed=0)
    seen: list[int] = []

    def repair(action: str, info: dict[str, Any]) -> str:
        seen.append(len(info.get("admissible_actions") or []))
        return action

    traj, info = execute(env, "100", 0, expert.actions + ["1 + 1 = 2"], instruction="make 24",
                         meta={"key": "direct"}, repair=repair, repair_from=1)
    short, _ = execute(env, "100", None, expert.actions[:2], instruction="partial")
    out["execute"] = {"trajectory": traj.to_dict(), "info": info, "repaired_at": seen,
                      "short": short.to_dict()}
    return out


# ---------------------------------------------------------------------------------- helped episodes
def _ask_at(steps: set[int]) -> Callable[[Any, int], bool]:
    return lambda state, step: step in steps


def without_state_texts(record: dict[str, Any]) -> dict[str, Any]:
    """A helped episode's record without its transitions' ``state_text``: the text is the renderer's
    (pinned by the renderer's own tests), the loop only decides which prefix it renders."""
    return {**record, "transitions": [{k: v for k, v in t.items() if k != "state_text"} for t in record["transitions"]]}


def helped() -> dict[str, Any]:
    env = envs.make("household")
    records = []
    ep = run_helped_episode(env, RandomAgent(seed=1), ExpertIntervention(), "pnp-0120", _ask_at({0, 2, 5}), seed=0,
                            meta={"key": "fixed"})
    records.append(ep.to_record())
    ep = run_helped_episode(env, RandomAgent(seed=2), ExpertIntervention(takeover=3, cost=2.5), "s_obj-0120",
                            _ask_at({1}), seed=4, state_chars=300)
    records.append(ep.to_record())
    coin = random.Random(17)
    ep = run_helped_episode(env, RandomAgent(seed=3), ExpertIntervention(), "s_hum-0120",
                            lambda state, step: coin.random() < 0.3, seed=3, max_steps=8)
    records.append(ep.to_record())
    # an intervention that fails: the episode ends with its error
    lms: list[Any] = []
    model = ModelIntervention(ReActAgent(_scripted_lm(lms, answers=None), mode="generate"), name="weak")
    ep = run_helped_episode(env, RandomAgent(seed=4), model, "pnp-0120", _ask_at({2}), seed=1)
    records.append(ep.to_record())
    gates = []
    for budget, rate, seed in ((2, 0.5, 1), (0, 1.0, 2), (float("inf"), 0.4, 3)):
        gate = Gate(RandomAsk(rate, seed=seed), budget)
        gate.reset()
        ep = run_helped_episode(env, RandomAgent(seed=seed), ExpertIntervention(), "pnp-0120",
                                lambda state, step, gate=gate: gate.ask(state, step), seed=seed)
        records.append(ep.to_record())
        gates.append({"used": gate.used, "asked_helper": gate.asked_helper})
    return {"episodes": [without_state_texts(r) for r in records], "gates": gates, "lm": _lm_record(lms)}


# ----------------------------------------------------------------------------------------- planners
def mcts() -> dict[str, Any]:
    game24 = envs.make("game24")
    results = []
    target = make_target("env")
    planner = make_planner("mcts", RandomAgent(seed=0), target, rollouts=6, expand_k=3)
    for task, seed in (("900", 0), ("905", 2)):
        results.append(planner.solve(game24, task, seed=seed).to_dict())
    lms: list[Any] = []
    agent = ReActAgent(_scripted_lm(lms, scores=_game24_scores(game24, "m")), mode="choose", temperature=1.0, seed=1)
    planner = make_planner("mcts", agent, target, rollouts=8, expand_k=4, horizon=4)
    results.append(planner.solve(game24, "901", seed=1).to_dict())
    planner = make_planner("mcts", agent, target, rollouts=5, expand_k=3, prior=True, q="mean", cache=False)
    results.append(planner.solve(game24, "903", seed=5).to_dict())
    def expert_scores(messages: list[dict[str, str]], candidate: str) -> float:
        return 0.0 if candidate == f"Action: {game24.expert_action()}" else -2.0

    guided = ReActAgent(_scripted_lm(lms, scores=expert_scores), mode="choose", temperature=1.0, seed=4)
    planner = make_planner("mcts", guided, target, rollouts=6, expand_k=3, horizon=6)
    results.append(planner.solve(game24, "906", seed=2).to_dict())
    expert = make_planner("mcts", ExpertAgent(), target, rollouts=3, expand_k=2)
    results.append(expert.solve(game24, "902", seed=0).to_dict())
    return {"results": results, "lm": _lm_record(lms)}


def planners() -> dict[str, Any]:
    game24 = envs.make("game24")
    lms: list[Any] = []
    agent = ReActAgent(_scripted_lm(lms, scores=_game24_scores(game24, "p")), mode="choose", temperature=0.0, seed=2)
    target = make_target("env")
    results = []
    for name, params in (("greedy", {}), ("sampling", {"n": 3}), ("best_of_n", {"n": 3}),
                         ("reflexion", {"max_trials": 3, "retry_temperature": 1.0, "avoid_first_actions": True})):
        planner = make_planner(name, agent, target, **params)
        results.append(planner.solve(game24, "904", seed=3).to_dict())
    return {"results": results, "lm": _lm_record(lms)}


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "rollout_random": rollout_random,
    "rollout_expert": rollout_expert,
    "rollout_scripted": rollout_scripted,
    "explore": explore,
    "replay_negatives": replay_negatives,
    "helped": helped,
    "mcts": mcts,
    "planners": planners,
}


def make(name: str) -> dict[str, Any]:
    """Case ``name`` run with the current code, timings dropped, through a JSON round trip."""
    return json.loads(json.dumps(without_timings(CASES[name]()), ensure_ascii=False))


def main(names: list[str]) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    for name in names or list(CASES):
        path = DATA / f"{name}.json"
        path.write_text(json.dumps(make(name), ensure_ascii=False, indent=1) + "\n")
        print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
