"""The one rendering: intent line, first observation, steps through the env's view, the length cut."""

from __future__ import annotations

from agentcritic.rendering import render, trajectory_text
from agentcritic.types import Step, Trajectory


def _long(n: int, env: str = "game24") -> Trajectory:
    steps = [Step(f"{i} + 1 = {i + 1}", f"Numbers left: {i + 1} obs{i:02d}") for i in range(n)]
    steps[-1] = Step("Answer: 3 * 8 = 24", "Correct: 3 * 8 = 24")
    return Trajectory(env, "t", "make 24", steps, True, 1.0, {"first_observation": "Numbers: 3 8"})


def test_render_is_the_intent_line_then_the_envs_view_of_the_trajectory() -> None:
    t = _long(2)
    assert render("make 24", t) == ("Instruction: make 24\nObservation: Numbers: 3 8\n"
                                    "Action: 0 + 1 = 1\nObservation: Numbers left: 1 obs00\n"
                                    "Action: Answer: 3 * 8 = 24\nObservation: Answer submitted.")
    assert render("make 24", t) == "Instruction: make 24\n" + trajectory_text(t)
    assert trajectory_text(t, raw=True).endswith("Observation: Correct: 3 * 8 = 24")
    assert render("x", _long(2, env="not-registered")).endswith("Correct: 3 * 8 = 24")  # no view: as it is
    assert render("x", "Action: a\nObservation: o") == "Instruction: x\nAction: a\nObservation: o"
    assert render("x", Trajectory("game24", "t", "x")) == "Instruction: x\n"


def test_the_cut_keeps_the_intent_the_first_observation_and_the_last_steps() -> None:
    t = _long(40)
    full = render("make 24", t)
    cut = render("make 24", t, max_chars=400)
    assert len(cut) <= 400 < len(full)
    intent, first, marker, kept = cut.split("\n", 3)
    assert intent == "Instruction: make 24" and first == "Observation: Numbers: 3 8"
    n_cut = int(marker.split()[1])
    assert marker == f"[... {n_cut} earlier steps cut ...]" and n_cut > 0
    assert full.endswith("\n" + kept) and kept.startswith("Action: ")  # the last steps, whole
    assert cut.count("Action: ") == 40 - n_cut and "Answer submitted." in cut
    assert render("make 24", t, max_chars=len(full)) == full


def test_the_prm_reads_the_state_texts_that_helped_episodes_log() -> None:
    from agentcritic import envs
    from agentcritic.agents import RandomAgent
    from agentcritic.helper.episode import run_helped_episode
    from agentcritic.helper.interventions import ExpertIntervention
    from agentcritic.rm.process_reward_model import examples_from_transitions, prefix_examples

    ep = run_helped_episode(envs.make("household"), RandomAgent(seed=1), ExpertIntervention(), "pnp-0120",
                            lambda state, step: step in (1, 2), seed=0, max_steps=6, state_chars=None)
    traj, logged = ep.trajectory, ep.transitions
    assert len(logged) == len(traj.steps) >= 3
    from_logs = [x.text for x in examples_from_transitions(logged)]
    from_prefixes = [x.text for x in prefix_examples([traj])]
    assert from_logs == from_prefixes  # the same text, whether the PRM learns from logs or from trajectories
    assert logged[2].state_text == render(traj.instruction, Trajectory(
        traj.env, traj.task_id, traj.instruction, traj.steps[:2], meta=dict(traj.meta)))
