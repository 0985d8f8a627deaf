"""Requests in flight inside one process: threads that wait on a served model together.

A served model (vLLM, llama.cpp's server …) answers many requests at once, so a worker that sends
one and waits wastes the server. ``--concurrency N`` runs up to N jobs of a stage on threads inside
each worker (:func:`agentcritic.parallel.run_jobs`), and a planner's N samples go out together
(:func:`agentcritic.planning.sampling.draw_samples`), through :func:`thread_map`.

Each thread works in a *lane*: a tuple naming its place (``(2,)`` for the third of a stage's threads,
``(2, 0)`` for the first sample thread of that job). Whatever is not safe to share between threads,
an env above all, is kept per lane (:meth:`agentcritic.specs.EnvSpec.cached`), so N lanes hold at
most N envs however many jobs they run. Every thread starts from a copy of its caller's context, so
LLM calls are counted into the caller's open :func:`~agentcritic.llm.count_llm_calls` blocks.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: how many requests a unit of work may keep in flight (``--concurrency``)
_IN_FLIGHT: contextvars.ContextVar[int] = contextvars.ContextVar("requests_in_flight", default=1)
#: the lane of this thread (see the module doc); () is the process's own
_LANE: contextvars.ContextVar[tuple[int, ...]] = contextvars.ContextVar("lane", default=())


def requests_in_flight() -> int:
    """The number of requests the current work may keep in flight (1: one at a time)."""
    return _IN_FLIGHT.get()


def lane() -> tuple[int, ...]:
    """This thread's lane (() outside :func:`thread_map`)."""
    return _LANE.get()


@contextlib.contextmanager
def in_flight(n: int) -> Iterator[None]:
    """``with in_flight(8): ...``: the work inside may keep ``n`` requests in flight."""
    token = _IN_FLIGHT.set(max(1, int(n)))
    try:
        yield
    finally:
        _IN_FLIGHT.reset(token)


def thread_map(fn: Callable[[T], R], items: Iterable[T], limit: int,
               on_result: Callable[[int, R | None, BaseException | None], None] | None = None) -> list[R]:
    """``[fn(x) for x in items]`` on up to ``limit`` threads, results in input order.

    Thread ``i`` works in lane ``lane() + (i,)`` under a copy of the caller's context. Every item is
    run even when one raises; then the first exception in input order is raised. ``on_result(index,
    result, error)`` is called in the calling thread as each item finishes (to write it down at
    once); with it, exceptions are handed to it and not raised.
    """
    todo = list(items)
    limit = max(1, min(int(limit), len(todo)))
    if limit == 1:  # one at a time: in the calling thread and its lane (no thread, no second env)
        if on_result is None:
            return [fn(x) for x in todo]
        out: list[Any] = []
        for i, x in enumerate(todo):
            try:
                result, error = fn(x), None
            except Exception as exc:  # noqa: BLE001 - handed to on_result, as the threads do
                result, error = None, exc
            on_result(i, result, error)
            out.append(result)
        return out
    results: list[Any] = [None] * len(todo)
    errors: list[BaseException | None] = [None] * len(todo)
    lock = threading.Lock()
    finished: list[int] = []  # indices in finishing order, handed to on_result by the caller's thread
    wake = threading.Condition(lock)
    cursor = iter(range(len(todo)))
    parent = contextvars.copy_context()
    base = parent.run(lane)
    stopped = threading.Event()  # on_result raised: hand out no more items

    def work(slot: int) -> None:
        _LANE.set(base + (slot,))
        while True:
            with lock:
                i = None if stopped.is_set() else next(cursor, None)
            if i is None:
                return
            try:
                results[i] = fn(todo[i])
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                errors[i] = exc
            with wake:
                finished.append(i)
                wake.notify()

    threads = [threading.Thread(target=parent.copy().run, args=(work, slot), daemon=True,
                                name=f"agentcritic-lane-{'.'.join(map(str, base + (slot,)))}")
               for slot in range(limit)]
    for t in threads:
        t.start()
    handed = 0
    try:
        while handed < len(todo):
            with wake:
                while len(finished) <= handed:
                    wake.wait()
                batch = finished[handed:]
            for i in batch:
                handed += 1
                if on_result is not None:
                    on_result(i, results[i], errors[i])
    finally:
        stopped.set()  # a raising on_result (or ^C) ends the run once the items under way finish
        for t in threads:
            t.join()
    if on_result is None:
        for exc in errors:
            if exc is not None:
                raise exc
    return results
