"""``synthesize``: explore → refine → negatives → filter, as resumable stages of one run folder.

Run folder::

    OUT/config.toml         the resolved SynthConfig (workers/executor excluded: they change no result)
    OUT/manifest.json       stages done
    OUT/explore.jsonl       one explored trajectory per key ``<task>#<k>``
    OUT/refine.jsonl        the same trajectories under the intent they fulfilled
    OUT/negatives.jsonl     per positive key (and ``cross/<task>``): its pairs and counters
    OUT/preferences.jsonl   the kept pairs, one types.Preference per line (rewritten atomically)
    OUT/synth_stats.json    counts per source, drops, intent sources, LLM fallbacks, verification, lengths;
                            positives and pairs per explorer and per intent source, and how many are
                            oracle-assisted (their positive came from the env's expert)

Every stage appends one record per unit of work and skips the keys already written, so a re-run
(after a crash or Ctrl-C) resumes and never writes a record twice.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from agentcritic.agents.base import derive_seed
from agentcritic.llm.base import LLMCalls, LLMFailureRateError, check_failure_rate
from agentcritic.parallel import EpisodeJob, llm_calls_of, run_jobs
from agentcritic.store import RunStore, atomic_write
from agentcritic.specs import EnvSpec
from agentcritic.synth.synth_config import ExplorePayload, SynthConfig, TrajectoryPayload
from agentcritic.types import Preference, Trajectory

STAGES = ("explore", "refine", "negatives", "filter")
#: explorers that are the env's own oracle (its solver or gold path): data they made is oracle-assisted
ORACLE_EXPLORERS = ("expert",)


def explorer_of(traj: Trajectory) -> str:
    """The explorer that made ``traj`` (``meta["explorer"]``; runs from before it was recorded: the
    first part of its policy name, ``expert-eps0.25`` → ``expert``)."""
    name = traj.meta.get("explorer")
    return str(name) if name else str(traj.meta.get("policy") or "unknown").split("-")[0]


def provenance(positives: list[Trajectory], pairs: list[Preference]) -> dict[str, Any]:
    """Positives and pairs per explorer and per intent source (a pair's: its chosen side's), and the
    oracle-assisted ones: those whose positive an :data:`ORACLE_EXPLORERS` explorer made."""
    def count(names: Any) -> dict[str, int]:
        return dict(sorted(Counter(names).items()))

    def source(t: Trajectory) -> str:
        return str(t.meta.get("intent_source") or "unknown")

    return {
        "by_explorer": {"positives": count(explorer_of(t) for t in positives),
                        "pairs": count(explorer_of(p.chosen) for p in pairs)},
        "by_intent_source": {"positives": count(source(t) for t in positives),
                             "pairs": count(source(p.chosen) for p in pairs)},
        "oracle_assisted": {"explorers": list(ORACLE_EXPLORERS),
                            "positives": sum(explorer_of(t) in ORACLE_EXPLORERS for t in positives),
                            "pairs": sum(explorer_of(p.chosen) in ORACLE_EXPLORERS for p in pairs)},
    }


def draw_tasks(config: SynthConfig) -> list[str]:
    """``config.tasks`` training task ids drawn at random (seeded): the random intents to explore."""
    from agentcritic import envs

    env = envs.make(config.env, **config.env_kwargs)
    try:
        ids = env.task_ids("train")
    finally:
        env.close()
    rng = random.Random(derive_seed(config.seed, "tasks", config.env))
    return rng.sample(ids, min(config.tasks, len(ids)))


def explore_jobs(config: SynthConfig, tasks: list[str]) -> list[EpisodeJob]:
    env = EnvSpec(name=config.env, kwargs=config.env_kwargs)
    jobs = []
    for task in tasks:
        specs: list[tuple[str, dict[str, Any]]] = []
        for k in range(config.trajectories_per_task):
            if config.explorer == "random":
                specs.append(("random", {}))
            elif config.explorer == "expert":
                specs.append(("expert", {"eps": config.eps}))
            else:
                specs.append((config.explorer, {
                    "eps": config.eps, "temperature": config.temperatures[k % len(config.temperatures)],
                    "mode": config.mode, "max_candidates": config.max_candidates, "llm": config.explorer_llm,
                    "few_shot": config.few_shot,
                }))
        specs += [("expert", {"eps": config.guided_eps})] * config.guided_per_task
        for k, (explorer, options) in enumerate(specs):
            jobs.append(EpisodeJob(
                key=f"{task}#{k}", env=env, task_id=task, seed=derive_seed(config.seed, "explore", task, k) % (2**31),
                payload=ExplorePayload(sample=k, split="train", explorer=explorer, options=options),
            ))
    return jobs


def explore_episode(job: EpisodeJob) -> tuple[str, dict[str, Any]]:
    """A :func:`agentcritic.parallel.run_jobs` worker: one explorer episode."""
    from agentcritic.agents import rollout
    from agentcritic.agents.explorer import make_explorer

    payload: ExplorePayload = job.payload
    agent = make_explorer(payload.explorer, seed=job.seed, **payload.options)
    traj = rollout(job.env.cached(), agent, job.task_id, seed=job.seed,
                   meta={"key": job.key, "sample": payload.sample, "split": payload.split,
                         "explorer": payload.explorer})
    agent.label(traj)  # steps its LLM failed to take are labelled random, and the episode is to be redone
    return job.key, traj.to_dict()


def check_llm(config: SynthConfig, store: RunStore, llm: dict[str, LLMCalls], stats: dict[str, Any]) -> None:
    """Stop with :class:`~agentcritic.llm.LLMFailureRateError` when a stage's LLM calls failed more often
    than ``config.max_llm_failure_rate``; ``synth_stats.json`` then holds the counts so far."""
    for stage, counts in llm.items():
        try:
            check_failure_rate(counts, config.max_llm_failure_rate, f"synthesize/{stage}")
        except LLMFailureRateError:
            store.write_json("synth_stats.json", {**stats, **llm_stats(llm), "env": config.env, "stopped": stage})
            raise


def llm_stats(llm: dict[str, LLMCalls]) -> dict[str, Any]:
    """``llm_calls``/``llm_failures`` summed over the stages, and each stage's (``llm``)."""
    total = LLMCalls()
    for counts in llm.values():
        total.add(counts)
    return {**total.as_fields(), "llm": {stage: counts.as_fields() for stage, counts in llm.items()}}


def _llm_options(config: SynthConfig) -> dict[str, Any]:
    return {"max_tokens": config.llm_max_tokens, "temperature": config.llm_temperature}


def synthesize(config: SynthConfig, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) reward-data synthesis into ``out``; return the statistics."""
    from agentcritic.synth.negatives import cross_policy_pairs, group_by_task, negatives_job
    from agentcritic.synth.refine import refine_job

    start = time.perf_counter()
    executors = dict(workers=config.workers, executor=config.executor, concurrency=config.concurrency)

    def bar(name: str) -> str | None:
        return f"{config.env}/{name}" if progress else None

    with RunStore(out) as store:  # claimed by the stage contract (agentcritic.stage)
        # 1. explore
        explore = store.shard("explore")
        jobs = explore_jobs(config, draw_tasks(config))
        pending = 0
        pending += run_jobs(jobs, explore, fn=explore_episode, progress=bar("explore"),
                            **executors)["pending"]
        llm = {"explore": llm_calls_of(explore)}
        check_llm(config, store, llm, {"pending": pending})
        store.mark_done("explore", trajectories=len(explore))

        # 2. refine
        refine = store.shard("refine")
        uses_llm = config.rephrase or config.llm_intents
        refine_opts = {"rephrase": config.rephrase, "llm_intents": config.llm_intents, "hindsight": config.hindsight,
                       **_llm_options(config),
                       "llm": config.refiner_llm}
        explored = [(k, r) for k, r in store.records("explore")]
        env = EnvSpec(name=config.env, kwargs=config.env_kwargs)
        jobs = [EpisodeJob(key=k, env=env, task_id=r["task_id"], seed=config.seed,
                           payload=TrajectoryPayload(trajectory=r, backend=config.refiner if uses_llm else "",
                                                     options=refine_opts))
                for k, r in explored]
        pending += run_jobs(jobs, refine, fn=refine_job, progress=bar("refine"),
                            **executors)["pending"]
        llm["refine"] = llm_calls_of(refine)
        check_llm(config, store, llm, {"pending": pending})
        store.mark_done("refine", trajectories=len(refine))

        # 3. negatives
        negatives = store.shard("negatives")
        # sorted by key: with --workers the shards hold records in finishing order, not job order
        refined = [Trajectory.from_dict(r) for _, r in sorted(store.records("refine"), key=lambda kr: kr[0])]
        neg_opts = {"sources": config.negatives, "edits_per_positive": config.edits_per_positive,
                    "llm_negatives_per_positive": config.llm_negatives_per_positive, **_llm_options(config),
                    "max_tokens": config.negative_max_tokens,
                    "llm": config.refiner_llm}
        needs_llm = "llm_negative" in config.negatives and config.env == "game24" and config.llm_negative_llm
        jobs = [EpisodeJob(key=t.meta["key"], env=env, task_id=t.task_id, seed=config.seed,
                           payload=TrajectoryPayload(trajectory=t.to_dict(), backend=config.refiner if needs_llm else "",
                                                     options=neg_opts))
                for t in refined if t.meta.get("positive")]
        pending += run_jobs(jobs, negatives, fn=negatives_job, progress=bar("negatives"),
                            **executors)["pending"]
        llm["negatives"] = llm_calls_of(negatives)
        check_llm(config, store, llm, {"pending": pending})
        if "cross_policy" in config.negatives:
            from agentcritic import envs
            from agentcritic.synth.grounding import grounding_for

            env = envs.make(config.env, **config.env_kwargs)
            try:
                grounding = grounding_for(env)
                for task, group in sorted(group_by_task(refined).items()):
                    key = f"cross/{task}"
                    if key in negatives:
                        continue
                    rng = random.Random(derive_seed(config.seed, "cross", task))
                    pairs, counts = cross_policy_pairs(group, grounding, config.cross_pairs_per_task, rng)
                    negatives.append(key, {"pairs": [p.to_dict() for p in pairs], "counts": dict(counts)})
            finally:
                env.close()
        store.mark_done("negatives", records=len(negatives))

        # 4. filter (cheap, deterministic: redone from the shards on every run)
        stats = _filter_stage(config, store, refined, progress)
        stats["seconds"] = round(time.perf_counter() - start, 2)
        stats["pending"] = pending
        stats.update(llm_stats(llm))
        stats["errors"] = pending + sum(bool(r.get("meta", {}).get("error")) for _, r in store.records("explore"))
        store.write_json("synth_stats.json", stats)
        store.mark_done("filter", pairs=stats["pairs"])
    return stats


def _filter_stage(config: SynthConfig, store: RunStore, refined: list[Trajectory], progress: bool) -> dict[str, Any]:
    from agentcritic import envs
    from agentcritic.synth.filter import filter_pairs
    from agentcritic.synth.grounding import grounding_for

    prefs: list[Preference] = []
    neg_counts: Counter = Counter()
    for _, rec in sorted(store.records("negatives"), key=lambda kr: kr[0]):
        prefs += [Preference.from_dict(p) for p in rec["pairs"]]
        neg_counts.update(rec.get("counts", {}))
    env = envs.make(config.env, **config.env_kwargs)
    try:
        kept, stats = filter_pairs(prefs, grounding_for(env), max_steps=config.max_steps,
                                   max_chars=config.max_chars, verify=config.verify, progress=progress)
    finally:
        env.close()
    lines = "".join(p.to_json() + "\n" for p in kept)
    atomic_write(store.root / "preferences.jsonl", lines)
    stats["env"] = config.env
    stats["candidates"] = len(prefs)
    stats["trajectories"] = {
        "explored": len(refined),
        "exploring_success_rate": round(sum(bool(t.meta.get("exploring_success")) for t in refined)
                                        / max(1, len(refined)), 4),
        "positives": sum(bool(t.meta.get("positive")) for t in refined),
        "per_policy": dict(sorted(Counter(str(t.meta.get("policy")) for t in refined).items())),
    }
    stats["intent_source"] = dict(sorted(Counter(str(t.meta.get("intent_source")) for t in refined).items()))
    stats["refiner_failures"] = {
        "rephrase": dict(sorted(Counter(t.meta["rephrase_failure"] for t in refined
                                        if "rephrase_failure" in t.meta).items())),
        "llm_intent": dict(sorted(Counter(t.meta["llm_failure"] for t in refined if "llm_failure" in t.meta).items())),
    }
    stats.update(provenance([t for t in refined if t.meta.get("positive")], kept))
    stats["negative_counters"] = dict(sorted(neg_counts.items()))
    stats["made_by"] = dict(sorted(Counter(f"{p.source}:{p.rejected.meta.get('made_by')}" for p in kept).items()))
    return stats


