"""Executors: run many episodes, in this process or a local process pool, into a run shard.

Workers only compute; the parent process is the one writer of the shard, so records are appended
one whole line at a time as episodes finish, and a re-run skips every key already written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

from agentcritic.store import Shard

# One env per (name, kwargs) per worker process, so a JVM or a catalogue is built once per worker.
_WORKER_ENVS: dict[str, Any] = {}


@dataclass(frozen=True)
class EpisodeJob:
    """Everything a worker needs to run one episode; plain data, so it pickles cheaply."""

    key: str
    env: str
    task_id: str
    seed: int
    policy: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def worker_env(name: str, kwargs: dict[str, Any]):
    from agentcritic import envs

    cache_key = name + json.dumps(kwargs, sort_keys=True, default=str)
    if cache_key not in _WORKER_ENVS:
        _WORKER_ENVS[cache_key] = envs.make(name, **kwargs)
    return _WORKER_ENVS[cache_key]


def run_episode(job: EpisodeJob) -> tuple[str, dict[str, Any]]:
    """Run one episode and return (key, trajectory as a dict). Used by every executor."""
    from agentcritic.agents import make_agent, rollout

    env = worker_env(job.env, job.env_kwargs)
    agent = make_agent(job.policy, seed=job.seed, **job.policy_kwargs)
    traj = rollout(env, agent, job.task_id, seed=job.seed, meta={"key": job.key, **job.meta})
    return job.key, traj.to_dict()


def run_jobs(
    jobs: Iterable[EpisodeJob],
    shard: Shard,
    workers: int = 1,
    executor: str = "pool",
    progress: str | None = "episodes",
    fn: Callable[[EpisodeJob], tuple[str, dict[str, Any]]] = run_episode,
) -> dict[str, int]:
    """Run the jobs whose key is not yet in ``shard``; append each result as it finishes."""
    from tqdm.auto import tqdm

    todo = [j for j in jobs if j.key not in shard]
    stats = {"skipped": 0, "written": 0}
    stats["skipped"] = len(shard)
    if not todo:
        return stats
    bar = tqdm(total=len(todo), desc=progress or "", disable=progress is None, unit="ep", dynamic_ncols=True)
    try:
        if executor == "ray":
            raise ValueError("executor 'ray' arrives with the optional extra agentcritic[ray] (not installed yet)")
        if executor != "pool":
            raise ValueError(f"unknown executor {executor!r}; valid executors are ['pool', 'ray']")
        if workers <= 1:
            for job in todo:
                key, record = fn(job)
                stats["written"] += shard.append(key, record)
                bar.update(1)
        else:
            _run_pool(todo, shard, workers, fn, bar, stats)
    finally:
        bar.close()
    return stats


def _run_pool(todo, shard, workers, fn, bar, stats) -> None:
    # spawn, not fork: the parent may hold a JVM gateway or torch threads that do not survive fork.
    ctx = get_context("spawn")
    workers = max(1, min(workers, len(todo)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending = set()
        it = iter(todo)
        # Keep a bounded window of jobs in flight so results stream to disk as they finish.
        for job in it:
            pending.add(pool.submit(fn, job))
            if len(pending) >= workers * 4:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                key, record = fut.result()
                stats["written"] += shard.append(key, record)
                bar.update(1)
                nxt = next(it, None)
                if nxt is not None:
                    pending.add(pool.submit(fn, nxt))
