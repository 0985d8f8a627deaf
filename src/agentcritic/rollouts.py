"""Roll a policy out over an env split into a run folder, resumably, and summarise the result."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from agentcritic.config import RolloutConfig
from agentcritic.parallel import EpisodeJob, RolloutPayload, llm_calls_of, run_jobs
from agentcritic.store import RunStore
from agentcritic.types import Trajectory


def episode_jobs(config: RolloutConfig, stage: str = "rollouts") -> list[EpisodeJob]:
    from agentcritic.agents import derive_seed

    env_spec, policy_spec = config.env_spec(), config.policy_spec()
    return [
        EpisodeJob(key=f"{task}#{sample}", env=env_spec, task_id=task, policy=policy_spec,
                   seed=derive_seed(config.seed, task, sample) % (2**31),
                   payload=RolloutPayload(sample=sample, split=config.split))
        for task in env_spec.task_ids(config.split, config.limit) for sample in range(config.samples)
    ]


def run_rollouts(config: RolloutConfig, out: str | Path, progress: bool = True, stage: str = "rollouts") -> dict[str, Any]:
    """Run (or resume) the rollouts of ``config`` into the run folder ``out``; return the summary."""
    start = time.perf_counter()
    with RunStore(out) as store:  # claimed by the stage contract (agentcritic.stage)
        jobs = episode_jobs(config, stage)
        shard = store.shard(stage)
        stats = run_jobs(
            jobs, shard, workers=config.workers, executor=config.executor, concurrency=config.concurrency,
            progress=f"{config.env}/{config.policy}" if progress else None,
        )
        trajectories = [Trajectory.from_dict(rec) for _, rec in store.records(stage)]
        summary = summarise(trajectories)
        summary.update(env=config.env, policy=config.policy, split=config.split,
                       written=stats["written"], resumed_from=stats["skipped"], pending=stats["pending"],
                       errors=summary["errors"] + stats["pending"],
                       seconds=round(time.perf_counter() - start, 2), **llm_calls_of(shard).as_fields())
        store.write_json(f"{stage}_summary.json", summary)
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
