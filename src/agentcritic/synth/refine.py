"""Refine the intent: write the instruction each explored trajectory actually fulfilled.

The paths, recorded in ``meta["intent_source"]``:

- ``"template"``: the env knows the outcome (see :mod:`agentcritic.synth.grounding`) and its
  grounded template is the intent;
- ``"hindsight"``: the trajectory missed its own task but reached another one the env can pose and
  check (game24: "make N from a b c d"); the trajectory is replaced by its replay as that task
  (``meta["hindsight"]`` says from what) and the env's instruction for it is the intent;
- ``"llm_rephrase"`` / ``"hindsight_rephrase"``: a template or hindsight intent re-phrased by the
  LLM, kept only when the re-phrase keeps every grounded fact (numbers, product type, attributes,
  options, price) — else the template is kept and the reason is recorded in
  ``meta["rephrase_failure"]`` (``empty``, ``garbage``, ``lost_facts``, ``error``);
- ``"llm"``: the env cannot ground the outcome (an unfinished ScienceWorld or TextWorld episode:
  :attr:`~agentcritic.synth.grounding.Grounding.describable`) and the LLM writes the intent from
  the trajectory, as ARMAP does; an unusable answer leaves the trajectory without a positive
  intent (``meta["llm_failure"]``). game24 and shop are not describable: an unsolved puzzle that
  left no whole number, or a visit that bought nothing, fulfilled no instruction worth learning.

A trajectory that fulfilled nothing checkable and got no LLM intent keeps its exploring
instruction with ``intent_source = "none"`` and ``positive = False``: it can still be the worse
side of a ``cross_policy`` pair. Grounded positives get ``score``/``success`` against their new
intent (the exploring ones move to ``meta["exploring_score"]``/``["exploring_success"]``).
"""

from __future__ import annotations

import random
import re
from typing import Any

from agentcritic.agents.base import derive_seed
from agentcritic.parallel import EpisodeJob
from agentcritic.synth.grounding import Grounding, grounding_for
from agentcritic.types import Trajectory

_PREFIX = re.compile(r"^\s*(?:rewritten|rephrased|instruction|intent|answer|task)\s*:\s*", re.IGNORECASE)
MIN_CHARS = 12


def clean_answer(text: str) -> str:
    """The first non-empty line of an LLM answer, without a label (``Rewritten:``) or quotes."""
    for line in (text or "").splitlines():
        line = _PREFIX.sub("", line.strip()).strip().strip('"').strip("'").strip()
        if line:
            return line
    return ""


def answer_problem(text: str, max_chars: int) -> str | None:
    """Why ``text`` is not a usable instruction (``empty`` / ``garbage``), or None when it is."""
    if not text:
        return "empty"
    letters = sum(c.isalpha() for c in text)
    words = re.findall(r"[A-Za-z]{2,}", text)
    if len(text) < MIN_CHARS or len(text) > max_chars or len(words) < 3 or letters < 0.5 * len(text):
        return "garbage"
    return None


def rephrase_messages(template: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You rewrite instructions in other words. Reply with the rewritten "
                                      "instruction only, as one sentence."},
        {"role": "user", "content": "Rewrite this instruction in different words. Keep every number, name, "
                                    f"attribute, option and price exactly as written.\nInstruction: {template}"},
    ]


def describe_messages(traj: Trajectory, last_steps: int = 10) -> list[dict[str, str]]:
    lines = []
    if traj.first_observation:
        lines.append(f"Observation: {traj.first_observation[:400]}")
    for s in traj.steps[-last_steps:]:
        lines += [f"Action: {s.action}", f"Observation: {s.observation[:200]}"]
    return [
        {"role": "system", "content": "You read what an agent did and write the task it actually completed."},
        {"role": "user", "content": "\n".join(lines) + "\n\nWrite, as one imperative sentence, the instruction "
                                    "that this agent's actions fulfilled."},
    ]


def _ask(lm: Any, messages: list[dict[str, str]], max_tokens: int, temperature: float, seed: int) -> tuple[str, str | None]:
    from agentcritic.llm import LLMError

    try:
        text = lm.generate(messages, n=1, temperature=temperature, max_tokens=max_tokens, seed=seed)[0]
    except LLMError as exc:
        return "", f"error: {exc}"[:200]
    return clean_answer(text), None


def refine_trajectory(
    traj: Trajectory,
    grounding: Grounding,
    lm: Any | None,
    *,
    rephrase: bool = True,
    llm_intents: bool = True,
    hindsight: bool = True,
    max_tokens: int = 64,
    temperature: float = 0.7,
    seed: int = 0,
) -> Trajectory:
    """The trajectory under the intent it fulfilled (see the module doc); ``traj`` is not changed."""
    rng = random.Random(derive_seed(seed, "refine", traj.task_id, traj.meta.get("key", "")))
    out = Trajectory.from_dict(traj.to_dict())
    out.meta.update(exploring_instruction=traj.instruction, exploring_score=traj.score,
                    exploring_success=traj.success)
    outcome = grounding.outcome(traj, rng)
    twin = grounding.hindsight(traj) if outcome is None and hindsight else None
    if twin is not None:
        outcome = grounding.outcome(twin, rng)
    if outcome is not None:
        if twin is not None:  # the replay as the task it reached, with the exploring facts of the original
            out = Trajectory.from_dict(twin.to_dict())
            out.meta.update(exploring_instruction=traj.instruction, exploring_score=traj.score,
                            exploring_success=traj.success, exploring_task=traj.task_id)
            traj = twin
        intent, source = outcome.intent, "hindsight" if twin is not None else "template"
        if rephrase and lm is not None:
            text, error = _ask(lm, rephrase_messages(outcome.intent), max_tokens, temperature, rng.randrange(2**31))
            problem = "error" if error else answer_problem(text, 3 * len(outcome.intent) + 60)
            lost = [] if problem else grounding.missing_facts(text, outcome)
            if problem or lost:
                out.meta["rephrase_failure"] = problem or "lost_facts"
                if lost:
                    out.meta["rephrase_lost"] = lost[:5]
                out.meta["rephrase_rejected"] = text[:300]
            else:
                intent, source = text, "llm_rephrase" if source == "template" else "hindsight_rephrase"
        out.instruction = intent
        out.meta.update(intent_source=source, template_intent=outcome.intent, goal=outcome.goal,
                        facts=outcome.facts, grounded=True, positive=True)
        out.score = grounding.reward_of(traj, outcome.goal)
        out.success = out.score >= 1.0 - 1e-9
        return out
    out.meta.update(grounded=False, goal=None)
    if llm_intents and lm is not None and traj.steps and grounding.describable:
        text, error = _ask(lm, describe_messages(traj), max_tokens, temperature, rng.randrange(2**31))
        problem = "error" if error else answer_problem(text, 400)
        if problem is None:
            out.instruction = text
            out.meta.update(intent_source="llm", positive=True)
            return out
        out.meta.update(llm_failure=problem, llm_rejected=text[:300])
    out.meta.update(intent_source="none", positive=False)
    return out


def refine_job(job: EpisodeJob) -> tuple[str, dict[str, Any]]:
    """A :func:`agentcritic.parallel.run_jobs` worker: refine one explored trajectory."""
    payload = job.payload  # a TrajectoryPayload
    traj = Trajectory.from_dict(payload.trajectory)
    refined = refine_trajectory(traj, grounding_for(job.env.cached()), payload.lm(), seed=job.seed,
                                **payload.settings())
    return job.key, refined.to_dict()
