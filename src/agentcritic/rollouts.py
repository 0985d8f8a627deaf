"""Roll a policy out over an env split into a run folder, resumably, and summarise the result."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from agentcritic.config import RolloutConfig
from agentcritic.parallel import EpisodeJob, run_jobs
from agentcritic.store import RunStore
from agentcritic.types import Trajectory


def episode_jobs(config: RolloutConfig, stage: str = "rollouts") -> list[EpisodeJob]:
    from agentcritic import envs
    from agentcritic.agents import derive_seed

    env = envs.make(config.env, **env_kwargs(config))
    try:
        tasks = env.task_ids(config.split, limit=config.limit)
    finally:
        env.close()
    jobs = []
    for task in tasks:
        for sample in range(config.samples):
            seed = derive_seed(config.seed, task, sample) % (2**31)
            jobs.append(
                EpisodeJob(
                    key=f"{task}#{sample}",
                    env=config.env,
                    task_id=task,
                    seed=seed,
                    policy=config.policy,
                    env_kwargs=env_kwargs(config),
                    policy_kwargs=policy_kwargs(config),
                    meta={"sample": sample, "split": config.split},
                )
            )
    return jobs


def policy_kwargs(config: RolloutConfig) -> dict[str, Any]:
    if config.policy in ("expert", "random"):
        return {}
    return {"mode": config.mode, "temperature": config.temperature, "few_shot": config.few_shot, "llm": config.llm}


def env_kwargs(config: RolloutConfig) -> dict[str, Any]:
    kwargs = dict(config.env_kwargs)
    if config.max_steps is not None:
        kwargs["max_steps"] = config.max_steps
    return kwargs


def run_rollouts(config: RolloutConfig, out: str | Path, progress: bool = True, stage: str = "rollouts") -> dict[str, Any]:
    """Run (or resume) the rollouts of ``config`` into the run folder ``out``; return the summary."""
    start = time.perf_counter()
    with RunStore(out, config={"rollout": config.model_dump(mode="json")}) as store:
        jobs = episode_jobs(config, stage)
        shard = store.shard(stage)
        stats = run_jobs(
            jobs, shard, workers=config.workers, executor=config.executor,
            progress=f"{config.env}/{config.policy}" if progress else None,
        )
        trajectories = [Trajectory.from_dict(rec) for _, rec in store.records(stage)]
        summary = summarise(trajectories)
        summary.update(env=config.env, policy=config.policy, split=config.split,
                       written=stats["written"], resumed_from=stats["skipped"],
                       seconds=round(time.perf_counter() - start, 2))
        store.write_json(f"{stage}_summary.json", summary)
        store.mark_done(stage, episodes=summary["episodes"])
    return summary


def summarise(trajectories: list[Trajectory]) -> dict[str, Any]:
    if not trajectories:
        return {"episodes": 0, "success_rate": 0.0, "mean_score": 0.0, "mean_steps": 0.0, "errors": 0}
    return {
        "episodes": len(trajectories),
        "success_rate": sum(bool(t.success) for t in trajectories) / len(trajectories),
        "mean_score": statistics.fmean(float(t.score or 0.0) for t in trajectories),
        "mean_steps": statistics.fmean(len(t.steps) for t in trajectories),
        "invalid_actions": sum(int(t.meta.get("invalid_actions", 0)) for t in trajectories),
        "errors": sum("error" in t.meta for t in trajectories),
    }
