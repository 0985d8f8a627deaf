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
from pathlib import Path
from typing import Any

from agentcritic.helper.helper_config import CollectConfig, InterventionConfig
from agentcritic.parallel import EpisodeJob, run_jobs, worker_env
from agentcritic.store import RunStore

STAGE = "episodes"


def episode_key(task_id: str, p: float, rollout: int) -> str:
    return f"{task_id}|p={p:g}|{rollout}"


def collect_jobs(config: CollectConfig) -> list[EpisodeJob]:
    """One job per (task, p, rollout), in task order so early tasks are complete first."""
    from agentcritic import envs
    from agentcritic.agents import derive_seed

    env = envs.make(config.env, **_env_kwargs(config))
    try:
        tasks = env.task_ids(config.split, limit=config.limit)
    finally:
        env.close()
    jobs = []
    for task in tasks:
        for p in config.p_grid:
            for i in range(config.n):
                seed = derive_seed(config.seed, task, f"{p:g}", i) % (2**31)
                jobs.append(EpisodeJob(
                    key=episode_key(task, p, i), env=config.env, task_id=task, seed=seed, policy=config.policy,
                    env_kwargs=_env_kwargs(config), policy_kwargs=_policy_kwargs(config),
                    meta={"p": p, "rollout": i, "split": config.split, "state_chars": config.state_chars,
                          "intervention": config.intervention.model_dump(mode="json")},
                ))
    return jobs


def _env_kwargs(config: CollectConfig) -> dict[str, Any]:
    kwargs = dict(config.env_kwargs)
    if config.max_steps is not None:
        kwargs["max_steps"] = config.max_steps
    return kwargs


def _policy_kwargs(config: CollectConfig) -> dict[str, Any]:
    if config.policy in ("expert", "random"):
        return {}
    return {"mode": config.mode, "temperature": config.temperature, "few_shot": config.few_shot, "llm": config.llm}


_INTERVENTIONS: dict[str, Any] = {}


def _intervention(spec: dict[str, Any]) -> Any:
    """One intervention per spec per worker process (a model intervention loads its LM once)."""
    import json

    from agentcritic.helper.interventions import make_intervention

    key = json.dumps(spec, sort_keys=True)
    if key not in _INTERVENTIONS:
        _INTERVENTIONS[key] = make_intervention(InterventionConfig(**spec))
    return _INTERVENTIONS[key]


def collect_episode(job: EpisodeJob) -> tuple[str, dict[str, Any]]:
    """Run one collection episode (any executor): ask with probability ``job.meta["p"]``."""
    from agentcritic.agents import make_agent
    from agentcritic.helper.episode import run_helped_episode

    env = worker_env(job.env, job.env_kwargs)
    agent = make_agent(job.policy, seed=job.seed, **job.policy_kwargs)
    p = float(job.meta["p"])
    coin = random.Random(job.seed ^ 0x5EED)
    episode = run_helped_episode(
        env, agent, _intervention(job.meta["intervention"]), job.task_id,
        lambda state, step: coin.random() < p,
        seed=job.seed, state_chars=job.meta.get("state_chars"),
        meta={"key": job.key, "p": p, "rollout": job.meta["rollout"], "split": job.meta["split"], "seed": job.seed},
    )
    return job.key, episode.to_record()


def run_collect(config: CollectConfig, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the collection of ``config`` into run folder ``out``; return the summary."""
    start = time.perf_counter()
    with RunStore(out, config={"collect": config.model_dump(mode="json")}) as store:
        jobs = collect_jobs(config)
        stats = run_jobs(jobs, store.shard(STAGE), workers=config.workers, executor=config.executor,
                         progress=f"collect {config.env}/{config.policy}" if progress else None, fn=collect_episode)
        summary = summarise(rec for _, rec in store.records(STAGE))
        summary.update(env=config.env, policy=config.policy, intervention=config.intervention.kind,
                       split=config.split, expected_episodes=len(jobs), written=stats["written"],
                       resumed_from=stats["skipped"], seconds=round(time.perf_counter() - start, 2))
        store.write_json("collect_summary.json", summary)
        if summary["episodes"] >= len(jobs):
            store.mark_done(STAGE, episodes=summary["episodes"])
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
