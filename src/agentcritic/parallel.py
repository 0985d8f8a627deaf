"""Executors: run many episodes, in this process or a local process pool, into a run shard.

Workers only compute; the parent process is the one writer of the shard, so records are appended
one whole line at a time as episodes finish, and a re-run skips every key already written.

Every job's LLM calls are counted where it runs (:func:`counted_job`) and noted in its record
(``record["llm"][shard name]``, in the trajectory's ``meta`` where the record is one), so a stage sums
them across processes (:func:`llm_calls_of`). A job during which an LLM call failed is not finished
work, whatever the job made of the failure (an explorer stepping at random, a refiner keeping the
template): it is recorded as an infrastructure failure, counted, and done again by a re-run.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from agentcritic.config import ConfigError
from agentcritic.specs import EnvSpec, PolicySpec
from agentcritic.store import Shard


@dataclass(frozen=True)
class EpisodeJob:
    """Everything a worker needs to run one job; plain data, so it pickles cheaply.

    ``payload`` is the stage's own typed part (a frozen dataclass: the sample index, the ask
    probability, the trajectory to refine …); its fields go into the trajectory's ``meta``.
    """

    key: str
    env: EnvSpec
    task_id: str
    seed: int
    policy: PolicySpec | None = None
    payload: Any = None

    def payload_fields(self) -> dict[str, Any]:
        return dataclasses.asdict(self.payload) if dataclasses.is_dataclass(self.payload) else {}


@dataclass(frozen=True)
class RolloutPayload:
    """A rollout job's part: which sample of the task, on which split."""

    sample: int
    split: str


def run_episode(job: EpisodeJob) -> tuple[str, dict[str, Any]]:
    """Run one episode and return (key, trajectory as a dict). Used by every executor."""
    from agentcritic.agents import rollout

    assert job.policy is not None, "an episode job names its policy"
    traj = rollout(job.env.cached(), job.policy.make(job.seed), job.task_id, seed=job.seed,
                   meta={"key": job.key, **job.payload_fields()})
    return job.key, traj.to_dict()


def counted_job(fn: Callable[[EpisodeJob], tuple[str, dict[str, Any]]], stage: str,
                job: EpisodeJob) -> tuple[str, dict[str, Any]]:
    """``fn(job)`` with its LLM calls noted in the record (see the module doc); runs in the worker."""
    from agentcritic.llm.base import count_llm_calls, is_infrastructure_failure

    with count_llm_calls() as counted:
        try:
            key, record = fn(job)
        except Exception as exc:  # noqa: BLE001 - an infrastructure failure becomes a retry row, with its calls
            if not is_infrastructure_failure(exc):
                raise
            key, record = job.key, {"error": f"{type(exc).__name__}: {exc}".strip(), "error_kind": "infrastructure"}
    if counted.calls:
        holder = record["meta"] if isinstance(record.get("meta"), dict) else record
        holder.setdefault("llm", {})[stage] = counted.as_fields()
        if counted.failures and holder.get("error_kind") != "infrastructure":
            holder["error"] = (f"{counted.failures} of {counted.calls} LLM call(s) failed on {counted.where()}; "
                               f"last error: {counted.last_error}")
            holder["error_kind"] = "infrastructure"
    return key, record


def llm_calls_of(shard: Shard) -> Any:
    """The LLM calls (an :class:`~agentcritic.llm.LLMCalls`) made for the work ``shard`` holds: its
    finished records and the failed attempts still to be redone (``retry`` rows)."""
    from agentcritic.llm.base import LLMCalls

    stage = shard.path.stem
    total = LLMCalls()
    for rec in [r for _, r in shard] + list(shard.retries.values()):
        holder = rec.get("meta") if isinstance(rec.get("meta"), dict) else rec
        noted = (holder.get("llm") or {}).get(stage)
        if noted:
            total.add(noted)
        elif str(holder.get("error") or "").startswith("LLMError"):  # the job raised: its record says only that
            total.add(LLMCalls(calls=1, failures=1, last_error=str(holder["error"])[:500]))
    return total


def infrastructure_error(record: dict[str, Any]) -> str | None:
    """The error of a record whose work failed outside the task (see :func:`is_infrastructure_failure`)."""
    for holder in (record, record.get("meta"), (record.get("trajectory") or {}).get("meta")):
        if isinstance(holder, dict) and holder.get("error_kind") == "infrastructure":
            return str(holder.get("error") or "infrastructure failure")
    return None


class _Recorder:
    """Appends finished work to the shard: done records, or ``retry`` rows for infrastructure failures."""

    def __init__(self, shard: Shard, bar: Any, stats: dict[str, int]) -> None:
        self.shard, self.bar, self.stats = shard, bar, stats

    def done(self, key: str, record: dict[str, Any]) -> None:
        if infrastructure_error(record) is not None:
            self.shard.append(key, record, retry=True)
            self.stats["pending"] += 1
        else:
            self.stats["written"] += self.shard.append(key, record)
        self.bar.update(1)

    def failed(self, job: EpisodeJob, exc: BaseException) -> None:
        """A job that raised: an infrastructure failure is recorded to be run again; anything else is a bug."""
        from agentcritic.llm.base import is_infrastructure_failure

        if not is_infrastructure_failure(exc):
            raise exc
        error = f"{type(exc).__name__}: {exc}".strip() or type(exc).__name__
        self.shard.append(job.key, {"error": error, "error_kind": "infrastructure"}, retry=True)
        self.stats["pending"] += 1
        self.bar.update(1)


def run_jobs(
    jobs: Iterable[EpisodeJob],
    shard: Shard,
    workers: int = 1,
    executor: str = "pool",
    progress: str | None = "episodes",
    fn: Callable[[EpisodeJob], tuple[str, dict[str, Any]]] = run_episode,
    concurrency: int = 1,
) -> dict[str, int]:
    """Run the jobs whose key is not yet done in ``shard``; append each result as it finishes.

    Work that failed outside the task (the LLM server, a worker that died) is appended as a
    ``retry`` row and counted in ``pending``: it is run again by the next call.

    ``concurrency``: jobs run at once on threads inside each worker (this process when ``workers``
    is 1), for a served model that answers many requests together; a worker process then takes
    ``concurrency`` jobs at a time. Each job may also keep that many requests in flight itself (a
    planner's samples, see :mod:`agentcritic.concurrency`).
    """
    from tqdm.auto import tqdm

    todo = [j for j in jobs if j.key not in shard]
    stats = {"skipped": len(shard), "written": 0, "pending": 0}
    if not todo:
        return stats
    concurrency = max(1, int(concurrency))
    fn = functools.partial(counted_job, fn, shard.path.stem)
    if concurrency > 1:
        fn = functools.partial(job_in_flight, fn, concurrency)
    bar = tqdm(total=len(todo), desc=progress or "", disable=progress is None, unit="ep", dynamic_ncols=True)
    recorder = _Recorder(shard, bar, stats)
    try:
        if executor == "ray":
            _run_ray(todo, fn, workers, recorder, concurrency)
        elif executor != "pool":
            raise ValueError(f"unknown executor {executor!r}; valid executors are {list(EXECUTORS)}")
        elif workers <= 1:
            _run_here(todo, fn, recorder, concurrency)
        else:
            _run_pool(todo, fn, workers, recorder, concurrency)
    finally:
        bar.close()
    return stats


def job_in_flight(fn: Callable[[EpisodeJob], tuple[str, dict[str, Any]]], concurrency: int,
                  job: EpisodeJob) -> tuple[str, dict[str, Any]]:
    """``fn(job)`` allowed ``concurrency`` requests in flight (see :mod:`agentcritic.concurrency`)."""
    from agentcritic.concurrency import in_flight

    with in_flight(concurrency):
        return fn(job)


def run_unit(fn: Callable[[EpisodeJob], tuple[str, dict[str, Any]]], concurrency: int,
             jobs: list[EpisodeJob]) -> list[tuple[str, dict[str, Any]]]:
    """A worker's unit of work: ``jobs`` on ``concurrency`` threads, results in job order."""
    from agentcritic.concurrency import thread_map

    return thread_map(fn, jobs, concurrency)


def _run_here(todo: list[EpisodeJob], fn: Callable[[EpisodeJob], tuple[str, dict[str, Any]]],
              recorder: _Recorder, concurrency: int) -> None:
    """In this process: one job at a time, or ``concurrency`` on threads, each written as it finishes."""
    from agentcritic.concurrency import thread_map

    def write(i: int, result: tuple[str, dict[str, Any]] | None, error: BaseException | None) -> None:
        if error is not None:  # infrastructure failures recorded, the rest re-raised
            recorder.failed(todo[i], error)
        else:
            assert result is not None
            recorder.done(*result)

    thread_map(fn, todo, concurrency, on_result=write)


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


def _units(todo: list[EpisodeJob], size: int) -> Iterator[list[EpisodeJob]]:
    """The jobs in units of ``size``: what one worker runs at once (its threads, see :func:`run_unit`)."""
    for start in range(0, len(todo), size):
        yield todo[start:start + size]


def _record_unit(recorder: _Recorder, unit: list[EpisodeJob], get: Callable[[], list[tuple[str, dict[str, Any]]]]) -> bool:
    """Write a finished unit's results (``get()``); a unit that raised fails each of its jobs.
    Returns False when the unit raised."""
    try:
        results = get()
    except Exception as exc:  # noqa: BLE001 - see _Recorder.failed
        for job in unit:
            recorder.failed(job, exc)
        return False
    for key, record in results:
        recorder.done(key, record)
    return True


def _run_pool(todo, fn, workers, recorder: _Recorder, concurrency: int = 1) -> None:
    from concurrent.futures.process import BrokenProcessPool

    # spawn, not fork: the parent may hold a JVM gateway or torch threads that do not survive fork.
    ctx = get_context("spawn")
    workers = max(1, min(workers, -(-len(todo) // concurrency)))
    unit_fn = functools.partial(run_unit, fn, concurrency)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        pending: dict[Any, list[EpisodeJob]] = {}
        it = _units(todo, concurrency)
        # Keep a bounded window of units in flight so results stream to disk as they finish.
        for unit in it:
            pending[pool.submit(unit_fn, unit)] = unit
            if len(pending) >= workers * 4:
                break
        broken = False
        while pending:
            done, _ = wait(set(pending), return_when=FIRST_COMPLETED)
            for fut in done:
                unit = pending.pop(fut)
                if not _record_unit(recorder, unit, fut.result):
                    broken = broken or isinstance(fut.exception(), BrokenProcessPool)
                    continue
                nxt = None if broken else next(it, None)
                if nxt is not None:
                    pending[pool.submit(unit_fn, nxt)] = nxt
        # A worker died: the pool is unusable; the jobs never submitted stay undone for the next run.


def _run_ray(todo, fn, workers, recorder: _Recorder, concurrency: int = 1) -> None:
    """Ray tasks running the same episode function; joins a cluster if one is configured
    (``RAY_ADDRESS``), else starts a local instance with ``workers`` CPUs."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("executor 'ray' needs the optional extra: pip install 'agentcritic[ray]', "
                          "or use executor 'pool'") from exc
    started = False
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        started = True
    try:
        unit_fn = functools.partial(run_unit, fn, concurrency)
        remote_fn = ray.remote(num_cpus=1, max_retries=2)(lambda unit, call=unit_fn: call(unit))  # ray wants a function
        it = _units(todo, concurrency)
        pending = {remote_fn.remote(unit): unit for _, unit in zip(range(max(1, workers) * 4), it)}

        def result_of(ref: Any) -> list[tuple[str, dict[str, Any]]]:
            try:
                return ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - see _Recorder.failed
                cause = getattr(exc, "cause", None)
                if isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
                    raise ConnectionError(f"the Ray worker died: {exc}") from exc
                if isinstance(cause, BaseException):
                    raise cause from exc
                raise

        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                unit = pending.pop(ref)
                _record_unit(recorder, unit, functools.partial(result_of, ref))
                nxt = next(it, None)
                if nxt is not None:
                    pending[remote_fn.remote(nxt)] = nxt
    finally:
        if started:
            ray.shutdown()
