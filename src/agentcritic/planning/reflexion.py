"""Reflexion (ARMAP-R): try, let the target judge, reflect on a failure, try again.

Each attempt is a full episode. The target scores it; a score at or above ``threshold`` is
accepted and the search stops. Otherwise a reflection on the failed attempt is added to the agent's
prompt (ReActAgent's section "Reflections from previous attempts") for the next attempt. After at
most ``max_trials`` attempts the best-scored one is returned.

Decisions:

- **Threshold.** Reward-model scores are uncalibrated logits, so no fixed number is built in: pass
  ``threshold``, calibrated on dev data with :func:`calibrate_threshold` (scores of successes and
  of failures) or :func:`calibrate_on` (a target and labelled dev trajectories). Left unset, the
  target's own ``success_threshold`` is used where it has one (the env-reward oracle: 1.0).
- **Who writes the reflection.** An agent in ``generate`` mode with a language model writes it
  (one greedy call reading the failed attempt). In ``choose`` mode, or for an agent without a
  generating model, a templated reflection is built from the trajectory (its actions, how it
  ended, the first action to avoid): small models score actions well but write poor critiques.
- **Temperatures.** The first attempt runs at ``temperature`` (0: the Greedy baseline's episode);
  later ones at ``retry_temperature`` when given, so a reflection that does not move the argmax
  still gets a different attempt.
- **Binding the reflection** (``avoid_first_actions``, off by default: the paper's method is the
  reflection in the prompt and nothing else). A small policy may ignore its reflections: with
  SmolLM2-135M in ``choose`` mode every retry repeated the first attempt, on every game24 and shop
  task measured (BENCHMARKS.md). When on, a retry's first step is offered the env's actions without
  the first actions of the failed attempts (the templated reflection's "start with a different
  action than …", made binding), so no two attempts are the same episode; where that would leave
  no action, all are offered. It acts through the listed actions, so only ``choose`` mode feels it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from agentcritic.agents.base import derive_seed
from agentcritic.agents.rollout import rollout
from agentcritic.config import StageConfig
from agentcritic.planning.accounting import agent_lm, agent_settings
from agentcritic.planning.base import BasePlanner, PlanResult
from agentcritic.types import Trajectory

REFLECTION_MAX_CHARS = 400


class ReflexionConfig(StageConfig):
    """Parameters of :class:`Reflexion`."""

    max_trials: int = Field(3, ge=1, description="attempts at most (the first one included)")
    threshold: float | None = Field(None, description="accept an attempt whose target score is >= this "
                                    "(calibrate on dev data; unset: the target's success_threshold)")
    temperature: float = Field(0.0, ge=0.0, description="agent temperature of the first attempt")
    retry_temperature: float | None = Field(None, ge=0.0, description="agent temperature of later attempts "
                                            "(unset: temperature)")
    max_steps: int | None = Field(None, ge=1, description="step limit of an episode (the env's own when unset)")
    reflection_tokens: int = Field(96, ge=8, description="tokens at most in an LLM-written reflection")
    avoid_first_actions: bool = Field(False, description="choose mode: a retry may not start with the first "
                                      "action of an earlier failed attempt (makes the reflection binding)")


def calibrate_threshold(scores_of_successes: Sequence[float], scores_of_failures: Sequence[float]) -> float:
    """The acceptance threshold that best separates successes from failures on dev data.

    Maximises balanced accuracy ((TPR + TNR) / 2) of "accept when score >= threshold" over the
    midpoints between observed scores; on ties the highest such threshold wins (wrongly accepting a
    failure ends the search, wrongly rejecting a success only costs another attempt).
    """
    pos = [float(s) for s in scores_of_successes]
    neg = [float(s) for s in scores_of_failures]
    if not pos or not neg:
        raise ValueError(
            "calibrate_threshold needs target scores of both successful and failed dev trajectories "
            f"(got {len(pos)} successes and {len(neg)} failures)"
        )
    values = sorted(set(pos + neg))
    candidates = [values[0] - 1.0] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1] + 1.0]
    best_t, best_acc = candidates[0], -1.0
    for t in candidates:
        acc = (sum(s >= t for s in pos) / len(pos) + sum(s < t for s in neg) / len(neg)) / 2
        if acc >= best_acc:
            best_t, best_acc = t, acc
    return best_t


def calibrate_on(target: Any, trajectories: Sequence[Trajectory]) -> float:
    """:func:`calibrate_threshold` from dev trajectories labelled by their env ``success``."""
    scores = target.score(list(trajectories))
    pos = [s for s, t in zip(scores, trajectories) if t.success]
    neg = [s for s, t in zip(scores, trajectories) if not t.success]
    return calibrate_threshold(pos, neg)


def _one_line(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def templated_reflection(trajectory: Trajectory, score: float, trial: int) -> str:
    """A reflection built from the failed attempt itself (no model): what it did, how it ended,
    and which first action to avoid."""
    actions = trajectory.actions
    if not actions:
        reason = trajectory.meta.get("error", "no action was taken")
        return f"Attempt {trial} failed (score {score:.3g}): {_one_line(str(reason), 160)}. Take a valid action."
    shown = "; ".join(actions[:6]) + (" …" if len(actions) > 6 else "")
    ending = _one_line(trajectory.steps[-1].observation, 160)
    return (
        f"Attempt {trial} failed (score {score:.3g}): it took {len(actions)} actions ({shown}) and ended with "
        f"\"{ending}\". Do not repeat it; start with a different action than '{actions[0]}'."
    )


def reflection_messages(trajectory: Trajectory, score: float) -> list[dict[str, str]]:
    lines = [f"Instruction: {trajectory.instruction}"]
    if trajectory.first_observation:
        lines.append(f"Observation: {_one_line(trajectory.first_observation, 600)}")
    for s in trajectory.steps[-12:]:
        lines += [f"Action: {s.action}", f"Observation: {_one_line(s.observation, 300)}"]
    return [
        {"role": "system", "content": "You review failed attempts at tasks in a text environment and say "
                                      "briefly what went wrong and what to do differently."},
        {"role": "user", "content": "\n".join(lines) + f"\n\nThis attempt failed (judged score {score:.3g}). In one "
                                    "or two sentences, say what went wrong and what to do differently next time."},
    ]


class WithoutFirstActions:
    """A proxy of ``env`` whose first listed actions after ``reset`` leave out ``avoid``."""

    def __init__(self, env: Any, avoid: Sequence[str]) -> None:
        self.__dict__["_env"] = env
        self.__dict__["_avoid"] = set(avoid)

    def reset(self, *args: Any, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        obs, info = self.__dict__["_env"].reset(*args, **kwargs)
        listed = info.get("admissible_actions")
        if listed:
            kept = [a for a in listed if a not in self.__dict__["_avoid"]]
            if kept:
                info = {**info, "admissible_actions": kept}
        return obs, info

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_env"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.__dict__["_env"], name, value)


class Reflexion(BasePlanner):
    """Attempt → score → accept at the threshold, or reflect and retry; return the best attempt."""

    name = "ARMAP-R"
    method = "reflexion"
    config_class = ReflexionConfig
    target_use = "to judge its attempts"
    config: ReflexionConfig

    def __init__(self, agent: Any, target: Any, **params: Any) -> None:
        super().__init__(agent, target, **params)
        threshold = self.config.threshold
        if threshold is None:
            threshold = getattr(target, "success_threshold", None)
        if threshold is None:
            raise ValueError(
                "reflexion needs threshold=: calibrate it on dev data with "
                "agentcritic.planning.reflexion.calibrate_threshold(scores_of_successes, scores_of_failures)"
            )
        self.threshold = float(threshold)

    def reflect(self, trajectory: Trajectory, score: float, trial: int) -> tuple[str, str]:
        """(reflection, who wrote it: ``"llm"`` or ``"template"``)."""
        lm = agent_lm(self.agent)
        if lm is not None and getattr(self.agent, "mode", None) == "generate" and hasattr(lm, "generate"):
            text = lm.generate(reflection_messages(trajectory, score), n=1, temperature=0.0,
                               max_tokens=self.config.reflection_tokens)[0]
            text = _one_line(text.replace("Reflection:", ""), REFLECTION_MAX_CHARS)
            if text:
                return text, "llm"
        return templated_reflection(trajectory, score, trial), "template"

    def _plan(self, env: Any, task_id: str, seed: int) -> PlanResult:
        base = list(getattr(self.agent, "reflections", []) or [])
        attempts: list[Trajectory] = []
        scores: list[float] = []
        reflections: list[str] = []
        writers: list[str] = []
        accepted = False
        for trial in range(self.config.max_trials):
            temperature = self.config.temperature
            if trial > 0 and self.config.retry_temperature is not None:
                temperature = self.config.retry_temperature
            trial_env = env
            if self.config.avoid_first_actions and attempts:
                trial_env = WithoutFirstActions(env, [a.actions[0] for a in attempts if a.actions])
            with agent_settings(self.agent, temperature=temperature, reflections=base + reflections):
                traj = rollout(trial_env, self.agent, task_id, seed=derive_seed(seed, "trial", trial) % (2**31),
                               max_steps=self.config.max_steps,
                               meta={"planner": self.method, "trial": trial, "reflections": list(reflections)})
            score = float(self.target.score([traj])[0])
            attempts.append(traj)
            scores.append(score)
            if score >= self.threshold:
                accepted = True
                break
            if trial + 1 < self.config.max_trials:
                text, writer = self.reflect(traj, score, trial + 1)
                reflections.append(text)
                writers.append(writer)
        best = max(range(len(attempts)), key=lambda i: (scores[i], -i))
        meta = {"method": self.method, "threshold": self.threshold, "accepted": accepted, "trials": len(attempts),
                "target_scores": scores, "reflections": reflections, "reflection_writers": writers, "pick": best}
        return PlanResult(attempts[best], scores[best], attempts, meta=meta)
