"""Phase 1 of self-regulation: offline transitions (selfreg.md).

Two schedules of asking:

- ``random`` (selfreg.md): for every task of the split, for every p of the grid, ``n`` rollouts of
  the base policy that ask for help with probability p at each step (no cap); keyed
  ``<task>|p=<p>|<rollout>``.
- ``sweep``: for every task, the base policy alone and then once for every single ask step (each
  offered intervention at each step); keyed ``<task>|asks=<steps>|<rollout>``. With ``sweep_asks``
  k ≥ 2, every set of 2, …, k steps is then tried on the tasks that no smaller set rescued (a task
  one ask rescues has nothing to gain from two: the DP's value there is already 1). With a
  deterministic base (an LLM at temperature 0) and env, this logs both branches, ask and not, at
  every state the base reaches (and, with ``sweep_asks`` 2, at every state one ask leads to on the
  tasks that need two), so the ``prefix`` table of the DP is exact there instead of resting on the
  PRM where a coin did not happen to ask. Its actions are computed once per state
  (:mod:`agentcritic.agents.memo`), so the cost is the states, not the episodes. A set whose last
  ask comes after the episode ended repeats a smaller set's episode: it is recorded as
  ``repeat_of`` that one, without transitions, and readers skip it.

Each episode is one JSONL line (``RUN/episodes.jsonl``, see
:meth:`~agentcritic.helper.episode.HelpedEpisode.to_record`), written as soon as it finishes.
Re-running the same command resumes: finished episodes are skipped, a torn last line is dropped,
nothing is written twice.

>>> from agentcritic.helper.collect import run_collect
>>> run_collect(CollectConfig(env="household", policy="smollm2", limit=20, n=2), "runs/hh-collect")
"""

from __future__ import annotations

import itertools
import random
import statistics
import time
from collections.abc import Sequence
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


#: an ask set of the sweep: (step, actor) pairs in step order; the actor is None with one intervention
AskSet = tuple[tuple[int, "str | None"], ...]


def sweep_key(task_id: str, asks: AskSet, rollout: int) -> str:
    steps = ",".join(f"{t}" if actor is None else f"{t}:{actor}" for t, actor in asks) or "-"
    return f"{task_id}|asks={steps}|{rollout}"


def ask_sets(horizon: int, size: int, actors: list[str] | None = None) -> list[AskSet]:
    """Every set of ``size`` ask steps in ``range(horizon)``, in order; with several ``actors``,
    every assignment of an actor to each step of a set."""
    out: list[AskSet] = []
    for steps in itertools.combinations(range(horizon), size):
        for who in itertools.product(*([actors] * size)) if actors else [(None,) * size]:
            out.append(tuple(zip(steps, who)))
    return out


@dataclass(frozen=True)
class CollectPayload:
    """A collection job's part: the ask probability (or the sweep's ask set), which rollout, and who helps."""

    p: float | None
    rollout: int
    split: str
    state_chars: int | None
    intervention: dict[str, Any]
    #: several interventions (``CollectConfig.interventions``): one is drawn at random when asking
    interventions: tuple[dict[str, Any], ...] = ()
    #: schedule = sweep: ask exactly at these steps (and whom), never elsewhere
    asks: AskSet | None = None


def collect_jobs(config: CollectConfig, *, sizes: Sequence[int] = (0, 1),
                 tasks: Sequence[str] | None = None) -> list[EpisodeJob]:
    """One job per (task, p, rollout) — or, for the sweep, per (task, rollout, ask set of one of
    ``sizes``) — in task order, so early tasks are complete first; ``tasks`` (default: the config's)."""
    from agentcritic.agents import derive_seed

    env_spec, policy_spec = config.env_spec(), config.policy_spec()
    intervention = config.intervention.model_dump(mode="json")
    several = tuple(i.model_dump(mode="json") for i in config.interventions)
    tasks = list(tasks) if tasks is not None else env_spec.task_ids(config.split, config.limit)

    def job(key: str, task: str, seed: int, p: float | None, i: int, asks: AskSet | None = None) -> EpisodeJob:
        return EpisodeJob(key=key, env=env_spec, task_id=task, policy=policy_spec, seed=seed,
                          payload=CollectPayload(p=p, rollout=i, split=config.split, state_chars=config.state_chars,
                                                 intervention=intervention, interventions=several, asks=asks))

    if config.schedule == "sweep":
        horizon = env_spec.cached().max_steps
        actors = [i.actor for i in config.interventions] or None
        sets = [one for size in sizes for one in ask_sets(horizon, size, actors)]
        # one seed per (task, rollout): every ask set of it replays the same episode up to its first ask
        return [job(sweep_key(task, asks, i), task, derive_seed(config.seed, task, "sweep", i) % (2**31), None, i, asks)
                for task in tasks for i in range(config.n) for asks in sets]
    return [job(episode_key(task, p, i), task, derive_seed(config.seed, task, f"{p:g}", i) % (2**31), p, i)
            for task in tasks for p in config.p_grid for i in range(config.n)]


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
    if payload.asks is not None:
        return _sweep_episode(job, build)
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
        job.env.cached(), job.policy.make_memoised(job.seed), intervention, job.task_id, should_ask,
        seed=job.seed, state_chars=payload.state_chars,
        meta={"key": job.key, "p": payload.p, "rollout": payload.rollout, "split": payload.split, "seed": job.seed},
    )
    return job.key, episode.to_record()


def _sweep_episode(job: EpisodeJob, build: Any) -> tuple[str, dict[str, Any]]:
    """A sweep job: ask exactly at the ask set's steps (whom it names); a set the episode ended
    before finishing is recorded as a repeat of the set it did reach."""
    from agentcritic.helper.episode import run_helped_episode

    payload: CollectPayload = job.payload
    asks, asked = dict(payload.asks or ()), []
    several = bool(payload.interventions)
    intervention: Any = ({h.name: h for h in map(build, payload.interventions)} if several
                         else build(payload.intervention))

    def should_ask(state: Any, step: int) -> Any:  # called at decisions only (not inside a takeover)
        if step not in asks:
            return None if several else False
        asked.append((step, asks[step]))
        return asks[step] if several else True

    episode = run_helped_episode(
        job.env.cached(), job.policy.make_memoised(job.seed), intervention, job.task_id, should_ask,
        seed=job.seed, state_chars=payload.state_chars,
        meta={"key": job.key, "asks": [[t, a] for t, a in payload.asks or ()], "rollout": payload.rollout,
              "split": payload.split, "seed": job.seed},
    )
    reached = tuple(asked)
    if episode.error is None and reached != payload.asks:  # it ended (or a takeover ran) past an ask: a smaller set's
        return job.key, {"task_id": job.task_id, "repeat_of": sweep_key(job.task_id, reached, payload.rollout),
                         "success": episode.success, "meta": episode.meta}
    return job.key, episode.to_record()


def run_collect(config: CollectConfig, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the collection of ``config`` into run folder ``out``; return the summary."""
    start = time.perf_counter()
    with RunStore(out) as store:  # claimed by the stage contract (agentcritic.stage)
        jobs = collect_jobs(config)
        label = f"collect {config.env}/{config.policy}" if progress else None
        stats = run_jobs(jobs, store.shard(STAGE), workers=config.workers, executor=config.executor,
                         concurrency=config.concurrency, progress=label, fn=collect_episode)
        if config.schedule == "sweep":  # larger ask sets only where the smaller ones rescued nothing
            planned = list(dict.fromkeys(job.task_id for job in jobs))
            for size in range(2, config.sweep_asks + 1):
                # the tasks no smaller set rescues, judged on the smaller sets alone: a resumed run plans
                # (and counts) the larger sets it already has, and a file seeded by a run with more tasks
                # adds none of that run's tasks here
                found = fewest_asks([rec for _, rec in store.records(STAGE)
                                     if not rec.get("repeat_of") and len(rec["meta"].get("asks") or []) < size])["tasks"]
                deeper = collect_jobs(config, sizes=[size], tasks=[t for t in planned if found.get(t, 0) is None])
                more = run_jobs(deeper, store.shard(STAGE), workers=config.workers, executor=config.executor,
                                concurrency=config.concurrency, progress=label and f"{label} ({size} asks)",
                                fn=collect_episode)
                jobs += deeper
                stats = {**stats, "written": stats["written"] + more["written"],
                         "pending": stats["pending"] + more["pending"]}  # "skipped": what was there at the start
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
    """Episodes, transitions, success and interventions overall and per p (per number of asks for a
    sweep, whose repeats are counted apart); a sweep's also says how many asks rescue each task."""
    by_p: dict[float, list[dict[str, Any]]] = {}
    repeats, sweep = 0, False
    for rec in records:
        if rec.get("repeat_of"):
            repeats += 1
            continue
        if rec["meta"].get("p") is None:
            sweep = True
            by_p.setdefault(len(rec["meta"].get("asks") or []), []).append(rec)
        else:
            by_p.setdefault(float(rec["meta"]["p"]), []).append(rec)
    rows = []
    for p in sorted(by_p):
        recs = by_p[p]
        rows.append({
            ("asks" if sweep else "p"): p,
            "episodes": len(recs),
            "success_rate": statistics.fmean(bool(r["success"]) for r in recs),
            "mean_interventions": statistics.fmean(r["interventions"] for r in recs),
            "mean_steps": statistics.fmean(r["steps"] for r in recs),
            "errors": sum(r.get("error") is not None for r in recs),
        })
    all_recs = [r for recs in by_p.values() for r in recs]
    out = {
        "schedule": "sweep" if sweep else "random",
        "episodes": len(all_recs),
        "repeats": repeats,
        "tasks": len({r["task_id"] for r in all_recs}),
        "transitions": sum(len(r["transitions"]) for r in all_recs),
        "success_rate": statistics.fmean(bool(r["success"]) for r in all_recs) if all_recs else 0.0,
        "errors": sum(r.get("error") is not None for r in all_recs),
        ("per_asks" if sweep else "per_p"): rows,
    }
    if sweep:
        out["fewest_asks"] = fewest_asks(all_recs)
    return out


def fewest_asks(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per task of a sweep, the fewest asks of a rescuing episode and its ask steps (the first such
    set); ``None`` where no set tried succeeds. With a deterministic base this is the floor any
    when-to-ask method meets on those tasks (the fewest-asks oracle)."""
    best: dict[str, tuple[int, list[int]] | None] = {}
    for rec in records:
        task = rec["task_id"]
        best.setdefault(task, None)
        if rec.get("error") is None and rec["success"]:
            steps = [t for t, _ in rec["meta"].get("asks") or []]
            if best[task] is None or (len(steps), steps) < best[task]:  # type: ignore[operator]
                best[task] = (len(steps), steps)
    counts: dict[str, int] = {}
    for found in best.values():
        label = "none" if found is None else str(found[0])
        counts[label] = counts.get(label, 0) + 1
    return {"tasks": {t: None if b is None else {"asks": b[0], "steps": b[1]} for t, b in sorted(best.items())},
            "counts": dict(sorted(counts.items()))}
