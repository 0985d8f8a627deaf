"""Interventions: each kind acts, tags the step with its actor name and charges its cost;
k-step takeovers; a search intervention plans from the current state and leaves the env there."""

from __future__ import annotations

import pytest

from agentcritic import envs, llm
from agentcritic.agents import ExpertAgent, RandomAgent, ReActAgent
from agentcritic.helper.episode import parse_state_key, run_helped_episode
from agentcritic.helper.helper_config import InterventionConfig
from agentcritic.helper.interventions import (
    ExpertIntervention,
    ModelIntervention,
    PrefixEnv,
    SearchIntervention,
    make_intervention,
)


def _ask_at(steps: set[int]):
    return lambda state, step: step in steps


def test_expert_intervention_tags_its_steps_and_charges_its_cost() -> None:
    env = envs.make("household")
    help_ = ExpertIntervention(name="human", cost=2.5)
    ep = run_helped_episode(env, RandomAgent(seed=1), help_, "pnp-0120", _ask_at({0, 2}), seed=0)
    actors = [s.actor for s in ep.trajectory.steps]
    assert actors[0] == "human" and actors[2] == "human"
    assert set(actors[1:2] + actors[3:]) <= {"agent"}
    assert ep.interventions == 2 and ep.cost == pytest.approx(5.0)
    assert [t.helped for t in ep.transitions] == [a == "human" for a in actors]
    assert ep.trajectory.meta["interventions"] == 2 and ep.trajectory.meta["intervention_cost"] == 5.0


def test_always_asking_the_expert_solves_every_task_one_request_per_step() -> None:
    env = envs.make("household")
    always = [run_helped_episode(env, RandomAgent(seed=0), ExpertIntervention(), t, lambda s, k: True)
              for t in env.task_ids("test")[:12]]
    assert all(ep.success for ep in always)
    assert all(ep.interventions == len(ep.trajectory.steps) for ep in always)


def test_k_step_takeover_is_one_request_for_k_helped_actions() -> None:
    env = envs.make("household")
    asked = []
    help_ = ExpertIntervention(takeover=3, cost=1.0)

    def ask(state, step):
        asked.append(step)
        return step == 0

    ep = run_helped_episode(env, RandomAgent(seed=3), help_, "s_hum-0121", ask)
    helped = [t.helped for t in ep.transitions]
    assert helped[:3] == [True, True, True] and not any(helped[3:])
    assert ep.interventions == 1 and ep.cost == 1.0
    assert 1 not in asked and 2 not in asked, "the decider is not consulted during a takeover"


def test_model_intervention_uses_any_llm_backend_agent() -> None:
    env = envs.make("household")
    env.reset(task_id="pnp-0120")
    target_room = env.world.room_of(env.world.placement[env.world.target])
    # a scripted LM (test double) that prefers walking to the object's true room
    lm = llm.load("scripted", scores={f"Action: go to {target_room}": -0.1}, default_score=-9.0)
    help_ = ModelIntervention(ReActAgent(lm, few_shot=False), name="bigger-model", cost=0.5)
    ep = run_helped_episode(env, RandomAgent(seed=0), help_, "pnp-0120", _ask_at({0}))
    assert ep.trajectory.steps[0].action == f"go to {target_room}"
    assert ep.trajectory.steps[0].actor == "bigger-model" and ep.cost == 0.5


def test_search_intervention_plans_from_the_current_state_and_restores_the_env() -> None:
    from agentcritic.planning import make_planner

    env = envs.make("household")
    env.reset(task_id="s_obj-0122")
    env.step(env.admissible_actions()[0])
    env.step(env.admissible_actions()[0])
    before = list(env.actions)
    expected = env.expert_action()
    search = SearchIntervention(make_planner("greedy", ExpertAgent()), cost=4.0)
    search.reset(env, "s_obj-0122", 0)
    from agentcritic.types import Trajectory

    action = search.act(env, Trajectory("household", "s_obj-0122", env.instruction), env.info())
    assert action == expected
    assert env.actions == before, "the real env is back where the episode stood"
    plan = search.last_result.trajectory
    assert plan.success, "greedy over the expert solves the rest of the task"


def test_prefix_env_starts_mid_episode_with_the_remaining_step_budget() -> None:
    env = envs.make("household")
    env.reset(task_id="pnp-0130")
    prefix = [env.admissible_actions()[0], env.admissible_actions()[0]]
    env.restore(prefix)
    view = PrefixEnv(env, prefix)
    obs, info = view.reset(task_id="pnp-0130")
    assert obs == env.last_observation and view.max_steps == env.max_steps - 2
    assert info["admissible_actions"] == env.admissible_actions()


def test_make_intervention_from_config_and_errors() -> None:
    assert isinstance(make_intervention(InterventionConfig()), ExpertIntervention)
    search = make_intervention(InterventionConfig(kind="search", policy="expert", planner="greedy", cost=3))
    assert isinstance(search, SearchIntervention) and search.name == "search" and search.cost == 3
    with pytest.raises(ValueError, match="takeover"):
        ExpertIntervention(takeover=0)
    with pytest.raises(ValueError, match="unknown policy"):
        InterventionConfig(kind="model", policy="gpt-17")
    # a state with no expert move ends the episode as a recorded failure, not a crash
    env = envs.make("game24")
    env.reset(task_id="900")
    dead_end = next(a for a in env.admissible_actions() if (env.restore([a]), env.expert_action())[1] is None)

    class FirstMove:
        name = "scripted-first-move"

        def reset(self, env, task_id, seed):
            pass

        def act(self, history, info):
            return dead_end

    ep = run_helped_episode(env, FirstMove(), ExpertIntervention(), "900", lambda s, k: k == 1)
    assert ep.error is not None and "expert has no action" in ep.error
    assert not ep.success and ep.transitions[-1].done and len(ep.transitions) == 1


def test_the_pipeline_runs_unchanged_on_game24_with_the_expert() -> None:
    env = envs.make("game24")
    for task in env.task_ids("test")[:5]:
        ep = run_helped_episode(env, RandomAgent(seed=0), ExpertIntervention(), task, lambda s, k: True)
        assert ep.success and all(t.actor == "expert" for t in ep.transitions)
        keys = [parse_state_key(t.state_key) for t in ep.transitions]
        assert keys[0] == (task, []) and keys[-1][1] == ep.trajectory.actions[:-1]
