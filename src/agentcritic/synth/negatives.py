"""Negatives: a worse twin of each positive, for the same intent, from several sources.

Every pair is a :class:`~agentcritic.types.Preference` whose ``source`` says how it was made:

- ``edit:<kind>`` (``edit:step``, ``edit:product``, ``edit:option``): one decisive action of the
  positive replaced by another admissible one, the rest re-executed in the env (with the env's
  repair rule, see :mod:`agentcritic.synth.grounding`); kept only when the env's reward against
  the intent falls below 1, i.e. the env confirms the intent is no longer fulfilled;
- ``llm_negative`` (game24): see :mod:`agentcritic.synth.llm_negatives`;
- ``truncate``: the positive cut before its last decisive step; kept when its reward is lower;
- ``cross_policy``: two trajectories of the same task from different explorers (policy or
  temperature), ranked by the env's reward against an intent — the task's own, or a positive's
  refined one; ties dropped. Both are first posed as the intent's task (``Grounding.as_goal``): a
  game24 hindsight positive "make N" is paired with the other explorer's trajectory of the same
  puzzle replayed as "make N", its answer line claiming N and judged by the env.

Rejected trajectories carry the intent as ``instruction``, their reward against it as ``score``
and ``meta["negative"]`` (the source) and ``meta["made_by"]`` (``env``, ``llm`` or ``rule``).
"""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from typing import Any

from agentcritic.agents.base import derive_seed
from agentcritic.parallel import EpisodeJob
from agentcritic.synth.grounding import FULFILLED, Grounding, grounding_for
from agentcritic.synth.replay import execute
from agentcritic.types import Preference, Trajectory

ALTERNATIVES_PER_EDIT = 3


def _as_rejected(traj: Trajectory, positive: Trajectory, grounding: Grounding, source: str, made_by: str) -> Trajectory:
    traj.instruction = positive.instruction
    traj.score = grounding.reward_of(traj, positive.meta.get("goal"))
    traj.success = traj.score >= FULFILLED
    traj.meta.update(negative=source, made_by=made_by, from_key=positive.meta.get("key"))
    return traj


def edit_negatives(positive: Trajectory, grounding: Grounding, count: int, rng: random.Random,
                   counts: Counter) -> list[Preference]:
    """Up to ``count`` ``edit:*`` pairs for a grounded positive (see the module doc)."""
    env, goal, seed = grounding.env, positive.meta.get("goal"), positive.meta.get("seed")
    out: list[Preference] = []
    points = grounding.decisive(positive)
    rng.shuffle(points)
    for index, kind in points:
        if len(out) >= count:
            break
        alternatives = grounding.alternatives(positive, index, kind)
        for alt in rng.sample(alternatives, min(ALTERNATIVES_PER_EDIT, len(alternatives))):
            actions = positive.actions[:index] + [alt] + positive.actions[index + 1:]
            traj, _ = execute(env, positive.task_id, seed, actions, instruction=positive.instruction,
                              meta={"key": f"{positive.meta.get('key')}/edit{index}"},
                              repair=lambda a, info: grounding.repair(a, info, rng), repair_from=index + 1)
            counts[f"edit:{kind}:tried"] += 1
            if grounding.reward_of(traj, goal) >= FULFILLED:
                counts[f"edit:{kind}:still_fulfilled"] += 1
                continue
            traj.meta["edit"] = {"index": index, "from": positive.actions[index], "to": alt}
            rejected = _as_rejected(traj, positive, grounding, f"edit:{kind}", "env")
            out.append(Preference(positive.instruction, positive, rejected, f"edit:{kind}"))
            break
    return out


def truncate_negative(positive: Trajectory, grounding: Grounding, counts: Counter) -> list[Preference]:
    cut = grounding.truncate_at(positive)
    if not cut:
        counts["truncate:no_cut"] += 1
        return []
    traj, _ = execute(grounding.env, positive.task_id, positive.meta.get("seed"), positive.actions[:cut],
                      instruction=positive.instruction, meta={"key": f"{positive.meta.get('key')}/truncate"})
    goal = positive.meta.get("goal")
    mine = grounding.reward_of(positive, goal) if goal is not None else float(positive.score or 0)
    if goal is not None and grounding.reward_of(traj, goal) >= mine:
        counts["truncate:not_worse"] += 1
        return []
    rejected = _as_rejected(traj, positive, grounding, "truncate", "env")
    if goal is None:  # an LLM-written intent: the prefix is worse by construction (it stops earlier)
        rejected.score = sum(s.reward for s in traj.steps)
    return [Preference(positive.instruction, positive, rejected, "truncate")]


def llm_negatives(positive: Trajectory, grounding: Grounding, lm: Any, count: int, rng: random.Random,
                  counts: Counter, max_tokens: int, temperature: float) -> list[Preference]:
    from agentcritic.synth.llm_negatives import llm_negative_lines, rule_corruption

    kinds = list(grounding.llm_negative_types)
    if not kinds or count == 0:
        return []
    puzzle = tuple(positive.meta["goal"]["numbers"])
    target = int(positive.meta["goal"].get("target", 24))  # N for a hindsight positive ("make N")
    start = rng.randrange(len(kinds))
    out = []
    for j in range(count):
        kind = kinds[(start + j) % len(kinds)]
        lines, why = llm_negative_lines(kind, positive.actions, puzzle, lm, rng, max_tokens, temperature, target)
        made_by = "llm"
        traj = None
        if lines is not None:
            traj, _ = execute(grounding.env, positive.task_id, positive.meta.get("seed"), lines,
                              instruction=positive.instruction)
            if traj.success:
                lines, why, traj = None, "solved", None
        if lines is None:
            counts[f"llm_negative:llm_failed:{why}"] += 1
            lines, made_by = rule_corruption(kind, positive.actions, puzzle, rng, target), "rule"
            if lines is None:
                counts["llm_negative:rule_failed"] += 1
                continue
            traj, _ = execute(grounding.env, positive.task_id, positive.meta.get("seed"), lines,
                              instruction=positive.instruction)
            if traj.success:
                counts["llm_negative:rule_failed"] += 1
                continue
        counts[f"llm_negative:{made_by}"] += 1
        traj.meta.update(key=f"{positive.meta.get('key')}/llm_negative{j}", error_type=kind)
        rejected = _as_rejected(traj, positive, grounding, "llm_negative", made_by)
        out.append(Preference(positive.instruction, positive, rejected, "llm_negative"))
    return out


def negatives_for(positive: Trajectory, grounding: Grounding, lm: Any, options: dict[str, Any],
                  seed: int = 0) -> tuple[list[Preference], Counter]:
    """Every per-positive negative (edit, llm_negative, truncate) that ``options["sources"]`` asks for."""
    rng = random.Random(derive_seed(seed, "negatives", positive.meta.get("key", positive.task_id)))
    counts: Counter = Counter()
    sources = options.get("sources", ())
    pairs: list[Preference] = []
    grounded = bool(positive.meta.get("grounded"))
    if "edit" in sources and grounded:
        pairs += edit_negatives(positive, grounding, options.get("edits_per_positive", 2), rng, counts)
    if "llm_negative" in sources and grounded:
        pairs += llm_negatives(positive, grounding, lm, options.get("llm_negatives_per_positive", 2), rng, counts,
                               options.get("max_tokens", 96), options.get("temperature", 0.7))
    if "truncate" in sources:
        pairs += truncate_negative(positive, grounding, counts)
    return pairs, counts


def negatives_job(job: EpisodeJob) -> tuple[str, dict[str, Any]]:
    """A :func:`agentcritic.parallel.run_jobs` worker: the negatives of one positive."""
    payload = job.payload  # a TrajectoryPayload
    positive = Trajectory.from_dict(payload.trajectory)
    pairs, counts = negatives_for(positive, grounding_for(job.env.cached()), payload.lm(), payload.settings(),
                                  seed=job.seed)
    return job.key, {"pairs": [p.to_dict() for p in pairs], "counts": dict(counts)}


def cross_policy_pairs(trajectories: list[Trajectory], grounding: Grounding, limit: int,
                       rng: random.Random) -> tuple[list[Preference], Counter]:
    """``cross_policy`` pairs among one task's refined trajectories (see the module doc)."""
    counts: Counter = Counter()
    intents: dict[str, dict[str, Any] | None] = {}
    made: dict[str, str] = {}  # which path made each intent: "task" (the task's own) or a positive's
    for t in trajectories:
        intents.setdefault(str(t.meta.get("exploring_instruction", t.instruction)), None)
        made.setdefault(str(t.meta.get("exploring_instruction", t.instruction)), "task")
    for t in trajectories:
        if t.meta.get("grounded"):
            intents.setdefault(t.instruction, t.meta.get("goal"))
            made.setdefault(t.instruction, str(t.meta.get("intent_source")))
    pairs = []
    for intent, goal in intents.items():
        for a, b in itertools.combinations(trajectories, 2):
            if a.meta.get("policy") == b.meta.get("policy"):
                continue
            pa, pb = grounding.as_goal(a, goal), grounding.as_goal(b, goal)
            ra, rb = grounding.reward_of(pa, goal), grounding.reward_of(pb, goal)
            if abs(ra - rb) < 1e-9:
                counts["cross_policy:tie"] += 1
                continue
            counts["cross_policy:posed"] += (pa is not a) + (pb is not b)
            hi, lo, rhi, rlo = (pa, pb, ra, rb) if ra > rb else (pb, pa, rb, ra)
            chosen = Trajectory.from_dict(hi.to_dict())
            rejected = Trajectory.from_dict(lo.to_dict())
            for t, r in ((chosen, rhi), (rejected, rlo)):
                t.instruction, t.score, t.success = intent, r, r >= FULFILLED
            chosen.meta["goal"] = goal
            chosen.meta["intent_source"] = made[intent]
            chosen.meta["grounded"] = goal is not None and bool(hi.meta.get("grounded")) and rhi >= FULFILLED
            rejected.meta.update(negative="cross_policy", made_by="env", from_key=hi.meta.get("key"))
            pairs.append(Preference(intent, chosen, rejected, "cross_policy"))
    rng.shuffle(pairs)
    counts["cross_policy:candidates"] += len(pairs)
    return pairs[:limit], counts


def group_by_task(trajectories: list[Trajectory]) -> dict[str, list[Trajectory]]:
    """Trajectories by the task they were explored on (a game24 hindsight twin with its puzzle's)."""
    groups: dict[str, list[Trajectory]] = defaultdict(list)
    for t in trajectories:
        groups[str(t.meta.get("exploring_task", t.task_id))].append(t)
    return dict(groups)
