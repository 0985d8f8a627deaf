"""Phase 1 of self-regulation: offline transitions (selfreg.md).

For every task of the split, for every p of the grid, ``n`` rollouts of the base policy that ask
for help with probability p at each step (no cap), each logged as one JSONL line
(``RUN/episodes.jsonl``, see :meth:`~agentcritic.helper.episode.HelpedEpisode.to_record`) as soon
as it finishes. Re-running the same command resumes: finished episodes (keyed
``<task>|p=<p>|<rollout>``) are skipped, a torn last line is dropped, nothing is written twice.

>>> from agentcritic.helper.collect import run_collect
>>> run_collect(CollectConfig(env="household", policy="smollm2", limit=20, n=2), "runs/hh-collect")
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentcritic.concurrency import lane
from agentcritic.helper.helper_config import CollectConfig, InterventionConfig
from agentcritic.parallel import EpisodeJob, llm_calls_of, run_jobs
from agentcritic.store import RunStore
from agentcritic.worker_cache import cached

STAGE = "episodes"


def episode_key(task_id: str, p: float, rollout: int) -> str:
    return f"{task_id}|p={p:g}|{rollout}"


@dataclass(frozen=True)
class CollectPayload:
    """A collection job's part: the ask probability, which rollout, and who helps."""

    p: float
    rollout: int
    split: str
    state_chars: int | None
    intervention: dict[str, Any]
    #: several interventions (``CollectConfig.interventions``): one is drawn at random when asking
    interventions: tuple[dict[str, Any], ...] = ()


def collect_jobs(config: CollectConfig) -> list[EpisodeJob]:
    """One job per (task, p, rollout), in task order so early tasks are complete first."""
    from agentcritic.agents import derive_seed

    env_spec, policy_spec = config.env_spec(), config.policy_spec()
    intervention = config.intervention.model_dump(mode="json")
    several = tuple(i.model_dump(mode="json") for i in config.interventions)
    return [
        EpisodeJob(key=episode_key(task, p, i), env=env_spec, task_id=task, policy=policy_spec,
                   seed=derive_seed(config.seed, task, f"{p:g}", i) % (2**31),
                   payload=CollectPayload(p=p, rollout=i, split=config.split, state_chars=config.state_chars,
                                          intervention=intervention, interventions=several))
        for task in env_spec.task_ids(config.split, config.limit) for p in config.p_grid for i in range(config.n)
    ]


def collect_episode(job: EpisodeJob) -> tuple[str, dict[str, Any]]:
    """Run one collection episode (any executor): ask with probability ``job.payload.p``."""
    from agentcritic.helper.episode import run_helped_episode
    from agentcritic.helper.interventions import make_intervention

    payload: CollectPayload = job.payload

    def build(spec: dict[str, Any]) -> Any:
        # an intervention keeps per-episode state: one per lane (threads of --concurrency, see agentcritic.concurrency)
        return cached("intervention", {**spec, "lane": list(lane())},
                      lambda: make_intervention(InterventionConfig(**spec)))

    coin = random.Random(job.seed ^ 0x5EED)
    if payload.interventions:
        helpers = {h.name: h for h in map(build, payload.interventions)}
        names = list(helpers)
        pick = random.Random(job.seed ^ 0xC401CE)  # whom to ask: its own stream, so the coin is the one-kind coin

        def should_ask(state: Any, step: int) -> str | None:
            return pick.choice(names) if coin.random() < payload.p else None

        intervention: Any = helpers
    else:
        intervention = build(payload.intervention)

        def should_ask(state: Any, step: int) -> bool:
            return coin.random() < payload.p

    episode = run_helped_episode(
        job.env.cached(), job.policy.make(job.seed), intervention, job.task_id, should_ask,
        seed=job.seed, state_chars=payload.state_chars,
        meta={"key": job.key, "p": payload.p, "rollout": payload.rollout, "split": payload.split, "seed": job.seed},
    )
    return job.key, episode.to_record()


def run_collect(config: CollectConfig, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the collection of ``config`` into run folder ``out``; return the summary."""
    start = time.perf_counter()
    with RunStore(out) as store:  # claimed by the stage contract (agentcritic.stage)
        jobs = collect_jobs(config)
        stats = run_jobs(jobs, store.shard(STAGE), workers=config.workers, executor=config.executor,
                         concurrency=config.concurrency, progress=f"collect {config.env}/{config.policy}" if progress else None, fn=collect_episode)
        summary = summarise(rec for _, rec in store.records(STAGE))
        who = ", ".join(i.actor for i in config.offered) if config.interventions else config.intervention.kind
        summary.update(env=config.env, policy=config.policy, intervention=who,
                       interventions=[{"actor": i.actor, "kind": i.kind, "cost": i.cost, "takeover": i.takeover}
                                      for i in config.offered],
                       split=config.split, expected_episodes=len(jobs), written=stats["written"],
                       resumed_from=stats["skipped"], pending=stats["pending"],
                       errors=summary["errors"] + stats["pending"], seconds=round(time.perf_counter() - start, 2),
                       **llm_calls_of(store.shard(STAGE)).as_fields())
        store.write_json("collect_summary.json", summary)
    return summary


def summarise(records: Any) -> dict[str, Any]:
    """Episodes, transitions, success and interventions overall and per p."""
    by_p: dict[float, list[dict[str, Any]]] = {}
    for rec in records:
        by_p.setdefault(float(rec["meta"]["p"]), []).append(rec)
    rows = []
    for p in sorted(by_p):
        recs = by_p[p]
        rows.append({
            "p": p,
            "episodes": len(recs),
            "success_rate": statistics.fmean(bool(r["success"]) for r in recs),
            "mean_interventions": statistics.fmean(r["interventions"] for r in recs),
            "mean_steps": statistics.fmean(r["steps"] for r in recs),
            "errors": sum(r.get("error") is not None for r in recs),
        })
    all_recs = [r for recs in by_p.values() for r in recs]
    return {
        "episodes": len(all_recs),
        "tasks": len({r["task_id"] for r in all_recs}),
        "transitions": sum(len(r["transitions"]) for r in all_recs),
        "success_rate": statistics.fmean(bool(r["success"]) for r in all_recs) if all_recs else 0.0,
        "errors": sum(r.get("error") is not None for r in all_recs),
        "per_p": rows,
    }
