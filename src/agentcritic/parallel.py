"""Executors: run many episodes, in this process or a local process pool, into a run shard.

Workers only compute; the parent process is the one writer of the shard, so records are appended
one whole line at a time as episodes finish, and a re-run skips every key already written.
"""

from __future__ import annotations

import json
import os
import sys
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
            _run_ray(todo, shard, workers, fn, bar, stats)
        elif executor != "pool":
            raise ValueError(f"unknown executor {executor!r}; valid executors are {list(EXECUTORS)}")
        elif workers <= 1:
            for job in todo:
                key, record = fn(job)
                stats["written"] += shard.append(key, record)
                bar.update(1)
        else:
            _run_pool(todo, shard, workers, fn, bar, stats)
    finally:
        bar.close()
    return stats


EXECUTORS = ("pool", "ray")


def die_with_parent(parent: int) -> None:
    """Pool-worker initializer: end this worker when the run's process dies (SIGKILL included),
    so an interrupted run leaves no workers behind. Linux asks the kernel (PR_SET_PDEATHSIG);
    elsewhere the pool's own shutdown is all there is."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)


def _run_pool(todo, shard, workers, fn, bar, stats) -> None:
    # spawn, not fork: the parent may hold a JVM gateway or torch threads that do not survive fork.
    ctx = get_context("spawn")
    workers = max(1, min(workers, len(todo)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
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


def _run_ray(todo, shard, workers, fn, bar, stats) -> None:
    """Ray tasks running the same episode function; joins a cluster if one is configured
    (``RAY_ADDRESS``), else starts a local instance with ``workers`` CPUs."""
    try:
        import ray
    except ImportError as exc:
        raise ValueError("executor 'ray' needs the optional extra: pip install 'agentcritic[ray]'") from exc
    started = False
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        started = True
    try:
        remote_fn = ray.remote(num_cpus=1, max_retries=2)(fn)
        it = iter(todo)
        pending = [remote_fn.remote(job) for _, job in zip(range(max(1, workers) * 4), it)]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                key, record = ray.get(ref)
                stats["written"] += shard.append(key, record)
                bar.update(1)
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(remote_fn.remote(nxt))
    finally:
        if started:
            ray.shutdown()
