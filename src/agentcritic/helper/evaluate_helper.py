"""Evaluation of when-to-ask methods under budgets (selfreg.md Evaluation).

For every budget C (default 0, 1, 2, 3, 5, ∞) and every method — ``never``, ``always``, ``random``
(at the rate matched to the DP's expected usage at C on the training table), ``prm_threshold``,
``prm_gain`` (τ fitted on the training table so that usage ≤ C), ``dp`` (the exact budgeted
policy) and ``helper`` (the trained helper model) — each held-out task is run with the decider
wrapped in a :class:`~agentcritic.helper.gate.Gate` (hard cap C). The run folder gets:

- ``episodes.jsonl``: one line per (split, method, C, task, sample) as it finishes (resumable);
- ``results.json``: per method and C: success rate, mean and max interventions per episode, mean
  cost, episodes; and ``dp_train``: the DP's predicted vs measured success on training tasks;
- (the ``eval-helper`` command and the report draw success vs interventions from ``results.json``).

Decisions: ``never`` does not depend on C and runs once (its row is repeated for every C); at
C = 0 the Gate never asks, so every method's C = 0 episode is the ``never`` episode, played once
and reported under each method (``same_as``: the key of the episode played); ``--workers N`` (or ``--executor ray``)
plays the episodes in worker processes, each building its own env, policy, PRM, helper and table;
``random`` draws a fresh seeded stream per episode so a resumed run equals an uninterrupted one;
the DP's table uses ``bins`` keys by default, which held-out tasks reach; with the ``prefix`` key it
knows only logged (training) states, so on held-out tasks it asks nowhere it has no entry (its
``misses`` are reported) and its fair test is ``dp_train``.

Several interventions (a collection with ``interventions``): a method may ask one kind alone,
``method@actor``, and ``dp`` and ``helper`` without ``@`` choose whom to ask (the mix). The methods
given are expanded (:func:`expand_methods`): ``never`` stays, ``dp`` and ``helper`` run mixed and once
per kind, the yes/no baselines once per kind. Each row's ``cost`` is the cost spent in the episode, so
``mean_cost`` per (method, C) is the x of the report's success-vs-cost plot.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentcritic.errors import AgentCriticError
from agentcritic.helper.gate import Gate
from agentcritic.helper.helper_config import EvalHelperConfig, InterventionConfig
from agentcritic.helper.prm_scores import SCORES_FILE, MemoScorer, load_prm, prm_identity, prm_scorer, seed_scores
from agentcritic.intervals import wilson
from agentcritic.store import RunStore

STAGE = "episodes"


class EvalHelperError(AgentCriticError, ValueError):
    """Inputs the evaluation cannot use (a run folder without episodes, a PRM missing); says which."""


def budget_label(budget: float) -> str:
    return "inf" if math.isinf(budget) else str(int(budget))


# ----------------------------------------------------------------------------------- deciders
def split_method(method: str) -> tuple[str, str | None]:
    """``"dp@expert"`` → ("dp", "expert"): the method and the one intervention it asks (None: any)."""
    base, _, actor = method.partition("@")
    return base, actor or None


def expand_methods(methods: Sequence[str], actors: Sequence[str]) -> list[str]:
    """With several interventions: ``never`` as is; ``dp`` and ``helper`` mixed and once per actor
    (``dp@a``); the yes/no baselines once per actor; ``m@a`` as given. One intervention: as given."""
    if len(actors) <= 1:
        return list(methods)
    out: list[str] = []
    for method in methods:
        if "@" in method or method == "never":
            out.append(method)
            continue
        if method in ("dp", "helper"):
            out.append(method)
        out.extend(f"{method}@{a}" for a in actors)
    return list(dict.fromkeys(out))


class DeciderFactory:
    """Builds the decider of (method, budget) once, fitted on the training table."""

    def __init__(self, table: Any, prm: Any = None, helper: Any = None, seed: int = 0,
                 costs: dict[str, float] | None = None) -> None:
        self.table, self.prm, self.helper, self.seed = table, prm, helper, seed
        self.costs = dict(costs or {})  # actor → cost of a request: the budgets' units
        self._cache: dict[tuple[str, float], Any] = {}
        self._dp: dict[tuple[float, str | None], Any] = {}

    def dp_solution(self, budget: float, actor: str | None = None) -> Any:
        """The exact budgeted DP at ``budget``, asking only ``actor`` when given (else any intervention)."""
        from agentcritic.helper.dp import solve_budget

        if (budget, actor) not in self._dp:
            self._dp[(budget, actor)] = solve_budget(self.table, budget, self.costs,
                                                     None if actor is None else [actor])
        return self._dp[(budget, actor)]

    def fitted(self, method: str, budget: float) -> Any:
        """The shared decider (τ, rates, DP) for ``method`` at ``budget``; random is per episode."""
        from agentcritic.helper.baselines import make_baseline

        key = (method, budget)
        name, actor = split_method(method)
        if actor is not None and actor not in self.table.actors:
            raise EvalHelperError(f"method {method!r}: {actor!r} is not an intervention of the training table; "
                                  f"its interventions are {list(self.table.actors)}")
        if key not in self._cache:
            if name == "helper":
                if self.helper is None:
                    raise EvalHelperError("method 'helper' needs a trained helper (give --helper RUN)")
                self._cache[key] = self.helper if actor is None else self.helper.offering([actor])
            elif name == "dp":
                from agentcritic.helper.baselines import DPPolicy

                self._cache[key] = DPPolicy(self.dp_solution(budget, actor), self.table, seed=self.seed)
            elif name == "random":
                self._cache[key] = make_baseline("random", self.table, budget,
                                                 usage=self.dp_solution(budget, actor).mean_usage, seed=self.seed,
                                                 costs=self.costs, actor=actor)
            else:
                if name in ("prm_threshold", "prm_gain") and self.prm is None:
                    raise EvalHelperError(f"method {method!r} needs a PRM (give --prm RUN)")
                self._cache[key] = make_baseline(name, self.table, budget, prm=self.prm, seed=self.seed,
                                                 costs=self.costs, actor=actor)
        return self._cache[key]

    def decider(self, method: str, budget: float, episode_seed: int) -> Any:
        decider = self.fitted(method, budget)
        if split_method(method)[0] == "random":
            from agentcritic.helper.baselines import RandomAsk

            return RandomAsk(decider.rate, seed=episode_seed)  # own stream: resume-stable
        return decider


# ----------------------------------------------------------------------------------- episodes
@dataclass(frozen=True)
class EvalJob:
    """One (method, budget, task, sample) of the evaluation; ``same_as`` is the key of the episode
    it is identical to (every method at C = 0 plays the ``never`` episode), else None."""

    key: str
    method: str
    budget: float
    task: str
    sample: int
    same_as: str | None = None


def episode_key(split: str, method: str, budget: float, task: str, sample: int) -> str:
    return f"{split}|{method}|C={budget_label(budget)}|{task}|{sample}"


def plan_jobs(tasks: Sequence[str], methods: Sequence[str], budgets: Sequence[float], *, split: str,
              samples: int = 1) -> list[EvalJob]:
    """Every (method, budget, task, sample), each marked with the episode it repeats, if any.

    ``never`` ignores C and is planned once, at the first budget. At C = 0 the Gate never asks, and
    the episode's seeds do not depend on the method, so every method's C = 0 episode is the same
    one (the ``never`` episode): the first is played, the others repeat it.
    """
    jobs, first_at_zero = [], {}
    for method in methods:
        for budget in (budgets[:1] if method == "never" else budgets):
            for task in tasks:
                for sample in range(samples):
                    key = episode_key(split, method, budget, task, sample)
                    same_as = None
                    if budget == 0:
                        same_as = first_at_zero.setdefault((task, sample), key)
                    jobs.append(EvalJob(key, method, budget, task, sample, None if same_as == key else same_as))
    return jobs


def play_job(env: Any, make_agent: Callable[[int], Any], intervention: Any, factory: DeciderFactory,
             job: EvalJob, seed: int = 0) -> dict[str, Any]:
    """Play one job's episode (its decider behind a Gate with cap C) and return its row."""
    from agentcritic.agents import derive_seed
    from agentcritic.helper.episode import run_helped_episode

    ep_seed = derive_seed(seed, job.task, job.sample) % (2**31)
    decider_seed = derive_seed(seed, job.method, budget_label(job.budget), job.task, job.sample)
    decider = factory.decider(job.method, job.budget, decider_seed)
    misses = getattr(decider, "misses", None)
    if isinstance(intervention, Mapping):  # several: the Gate offers the method's actor(s) and spends its cost
        costs = {a: one.cost for a, one in intervention.items()}
        only = split_method(job.method)[1]
        chooses = callable(getattr(decider, "choose", None))  # a yes/no decider (never) gets one actor to ask
        offered = [only] if only else (list(costs) if chooses else list(costs)[:1])
        gate = Gate(decider, job.budget, costs={a: costs[a] for a in offered})
        asked: dict[str, int] = {}

        def should_ask(state: Any, step: int) -> str | None:
            actor = gate.choose(state, step)
            if actor is not None:
                asked[actor] = asked.get(actor, 0) + 1
            return actor
    else:
        gate = Gate(decider, job.budget, cost=intervention.cost)
        should_ask = gate.ask  # type: ignore[assignment]
    gate.reset()
    ask_steps: list[int] = []  # where each request began (agentcritic.helper.ask_steps)

    def ask(state: Any, step: int) -> Any:
        answer = should_ask(state, step)
        if answer:
            ask_steps.append(step)
        return answer

    episode = run_helped_episode(env, make_agent(ep_seed), intervention, job.task, ask, seed=ep_seed)
    row = {
        "method": job.method, "budget": budget_label(job.budget), "task_id": job.task, "sample": job.sample,
        "success": episode.success, "interventions": episode.interventions, "cost": episode.cost,
        "steps": len(episode.trajectory.steps), "error": episode.error,
        "actions": episode.trajectory.actions, "actors": [s.actor for s in episode.trajectory.steps],
        "ask_steps": ask_steps,
    }
    if isinstance(intervention, Mapping):
        row["requests"] = {a: asked.get(a, 0) for a in intervention}  # per actor (a takeover is one)
    if misses is not None:
        row["table_misses"] = decider.misses - misses  # decisions on states the table has no entry for
    return row


def run_method_episodes(
    env: Any,
    make_agent: Callable[[int], Any],
    intervention: Any,
    tasks: Sequence[str],
    methods: Sequence[str],
    budgets: Sequence[float],
    factory: DeciderFactory,
    *,
    split: str,
    samples: int = 1,
    seed: int = 0,
    shard: Any = None,
    progress: bool = True,
    workers: Any = None,
) -> list[dict[str, Any]]:
    """Run every (method, budget, task, sample) not yet in ``shard``; return all rows (old and new).

    In this process by default; with ``workers`` (an :class:`EvalWorkers`, and a shard) the episodes
    run in its process pool or on Ray, each worker holding its own env, models and deciders.
    """
    from tqdm.auto import tqdm

    from agentcritic.parallel import counted_job, infrastructure_error

    jobs = plan_jobs(tasks, methods, budgets, split=split, samples=samples)
    rows: dict[str, dict[str, Any]] = {}
    if shard is not None:
        for key, rec in shard:
            rows[key] = rec
    todo = [j for j in jobs if j.same_as is None and j.key not in rows]
    if workers is not None and todo:
        if shard is None:
            raise EvalHelperError("running the evaluation in workers needs a shard to write to")
        workers.run(todo, shard, seed=seed, progress=f"eval-helper {split}" if progress else None)
        rows.update({key: rec for key, rec in shard})
    else:
        bar = tqdm(todo, desc=f"eval-helper {split}", unit="ep", disable=not progress or not todo,
                   dynamic_ncols=True)
        stage = shard.path.stem if shard is not None else "eval_helper"
        for job in bar:
            # counted as a worker counts a job: its LLM calls in the row, a failed call making it a retry
            _, row = counted_job(lambda j: (j.key, {"split": split, **play_job(env, make_agent, intervention,
                                                                               factory, j, seed)}), stage, job)
            failed = infrastructure_error(row) is not None  # redone when the run is resumed
            if shard is not None:
                shard.append(job.key, row, retry=failed)
            if not failed:
                rows[job.key] = row
    out = []
    for job in jobs:  # episodes that failed outside the task are left out: they are pending
        if job.same_as is None and job.key in rows:
            out.append(rows[job.key])
        elif job.same_as is not None and job.same_as in rows:
            out.append({**rows[job.same_as], "method": job.method, "budget": budget_label(job.budget),
                        "same_as": job.same_as})
    return out


class EvalWorkers:
    """A pool (or Ray) of workers for :func:`run_method_episodes`; ``spec`` is what each worker
    needs to rebuild the evaluation's parts once: env, policy, intervention, table, PRM and helper."""

    def __init__(self, spec: dict[str, Any], workers: int, executor: str = "pool") -> None:
        self.spec, self.workers, self.executor = spec, workers, executor

    def run(self, jobs: Sequence[EvalJob], shard: Any, *, seed: int, progress: str | None) -> None:
        from agentcritic.parallel import EpisodeJob, run_jobs
        from agentcritic.specs import EnvSpec

        env = EnvSpec(name=self.spec["env"], kwargs=self.spec["env_kwargs"])
        episode_jobs = [
            EpisodeJob(key=j.key, env=env, task_id=j.task, seed=seed,
                       payload=EvalHelperPayload(job=j, split=j.key.split("|", 1)[0], spec=self.spec))
            for j in jobs
        ]
        run_jobs(episode_jobs, shard, workers=self.workers, executor=self.executor, progress=progress,
                 fn=eval_episode)


@dataclass(frozen=True)
class EvalHelperPayload:
    """An eval-helper job's part: the (method, budget, task, sample) to play, its split, and the
    evaluation's spec (each worker rebuilds the policy, intervention, table, PRM and helper from it once)."""

    job: EvalJob
    split: str
    spec: dict[str, Any]


def eval_episode(job: Any) -> tuple[str, dict[str, Any]]:
    """Worker entry point (any executor): play one :class:`EvalJob` carried in ``job.payload``."""
    from agentcritic.worker_cache import cached

    payload: EvalHelperPayload = job.payload
    make_agent, intervention, factory = cached("eval-helper parts", payload.spec, lambda: build_parts(payload.spec))
    row = play_job(job.env.cached(), make_agent, intervention, factory, payload.job, job.seed)
    return job.key, {"split": payload.split, **row}


def summarise_rows(rows: Iterable[dict[str, Any]], budgets: Sequence[float]) -> list[dict[str, Any]]:
    """Per (method, budget): success rate, mean/max interventions per episode, mean cost.

    ``tasks`` and ``success_interval`` (the 95 % Wilson interval) count tasks, not episodes: a task's
    samples are averaged first, so several samples of one task do not narrow the interval.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["budget"]), []).append(r)
    labels = [budget_label(b) for b in budgets]
    out = []
    methods = list(dict.fromkeys(m for m, _ in groups))
    for method in methods:
        for label in labels:
            group = groups.get((method, label))
            if group is None and method == "never" and groups.get((method, labels[0])):
                group = groups[(method, labels[0])]  # never ignores C
            if not group:
                continue
            inter = [int(r["interventions"]) for r in group]
            per_task: dict[str, list[bool]] = {}
            for r in group:
                per_task.setdefault(str(r["task_id"]), []).append(bool(r["success"]))
            task_rates = [statistics.fmean(xs) for xs in per_task.values()]
            interval = wilson(min(float(len(task_rates)), sum(task_rates)), len(task_rates))
            out.append({
                "method": method, "budget": label, "episodes": len(group), "tasks": len(task_rates),
                "success_rate": statistics.fmean(bool(r["success"]) for r in group),
                "success_interval": list(interval) if interval else None,
                "mean_interventions": statistics.fmean(inter), "max_interventions": max(inter),
                "mean_cost": statistics.fmean(float(r["cost"]) for r in group),
                "mean_steps": statistics.fmean(int(r["steps"]) for r in group),
                "errors": sum(r.get("error") is not None for r in group),
            })
            if any("requests" in r for r in group):  # several interventions: requests per actor, mean per episode
                actors = list(dict.fromkeys(a for r in group for a in r.get("requests") or {}))
                out[-1]["mean_requests"] = {a: statistics.fmean((r.get("requests") or {}).get(a, 0) for r in group)
                                            for a in actors}
    return out


def dp_predictions(factory: DeciderFactory, tasks: Sequence[str], budgets: Sequence[float]) -> dict[str, dict[str, float]]:
    """The DP's predicted success and usage per budget, averaged over ``tasks``' start states."""
    table = factory.table
    out = {}
    for budget in budgets:
        sol = factory.dp_solution(budget)
        b = sol.budget if math.isinf(budget) else int(budget)
        succ, use = [], []
        for task in tasks:
            if task not in table.roots:
                continue
            idx, w = table.roots[task]
            w = w / w.sum()
            succ.append(float(np.dot(w, sol.values[idx, b])))
            use.append(float(np.dot(w, sol.usage[idx, b])))
        # the DP's usage is spent cost; with one intervention, requests = cost / its cost (several: unknown)
        unit = next(iter(factory.costs.values())) if len(factory.costs) == 1 else 1.0
        several = len(factory.table.actors) > 1
        out[budget_label(budget)] = {
            "predicted_success": statistics.fmean(succ) if succ else float("nan"),
            "predicted_interventions": statistics.fmean(use) / unit if use and not several else float("nan"),
            "predicted_cost": statistics.fmean(use) if use else float("nan"),
        }
    return out


def format_table(rows: list[dict[str, Any]], dp_train: list[dict[str, Any]] | None = None) -> str:
    # with several interventions (method@kind rows) the total cost per episode is the column that compares them
    priced = any("@" in r["method"] for r in rows)
    lines = [f"{'method':<15}{'C':>4}{'success':>9}{'95% interval':>14}{'tasks':>7}{'mean int.':>11}{'max int.':>10}"
             f"{'episodes':>10}" + (f"{'mean cost':>11}" if priced else "")]
    for r in rows:
        lines.append(f"{r['method']:<15}{r['budget']:>4}{r['success_rate']:>9.1%}{_interval_text(r):>14}"
                     f"{r.get('tasks', ''):>7}{r['mean_interventions']:>11.2f}{r['max_interventions']:>10d}"
                     f"{r['episodes']:>10d}" + (f"{r.get('mean_cost', float('nan')):>11.2f}" if priced else ""))
    if dp_train:
        lines.append("")
        lines.append(f"{'DP on training tasks':<20}{'C':>4}{'predicted':>11}{'measured':>10}{'pred. int.':>12}{'meas. int.':>12}")
        for r in dp_train:
            lines.append(f"{'':<20}{r['budget']:>4}{r['predicted_success']:>11.1%}{r['success_rate']:>10.1%}"
                         f"{r['predicted_interventions']:>12.2f}{r['mean_interventions']:>12.2f}")
    return "\n".join(lines)


def _interval_text(row: dict[str, Any]) -> str:
    """``26–66%``: a row's 95 % success interval in whole percent (``–`` when it has none)."""
    interval = row.get("success_interval")
    return f"{100 * interval[0]:.0f}–{100 * interval[1]:.0f}%" if interval else "–"


# ----------------------------------------------------------------------------------- the stage
def eval_spec(config: EvalHelperConfig) -> dict[str, Any]:
    """Everything :func:`build_parts` needs, as plain data (it travels to every worker)."""
    from agentcritic.helper.helper_config import recorded_collection, resolve_state_key

    collect = recorded_collection(config.data, required=True)
    env_kwargs = collect.env_spec().kwargs if config.env_kwargs is None else dict(config.env_kwargs)
    policy = collect.policy_spec()
    return {
        "env": config.env or collect.env, "env_kwargs": env_kwargs, "policy": policy.name,
        "policy_spec": policy.model_dump(mode="json"), "intervention": collect.intervention.model_dump(mode="json"),
        "interventions": [i.model_dump(mode="json") for i in collect.interventions],
        "data": config.data,
        "prm": config.prm, "helper": config.helper if "helper" in config.methods else None,
        "helper_threshold": config.helper_threshold,
        "state_key": resolve_state_key(config.state_key, config.data), "n_min": config.n_min, "kappa": config.kappa, "seed": config.seed,
        "helped_actor": config.helped_actor, "device": config.device, "threads": None,
    }


def build_parts(spec: dict[str, Any]) -> tuple[Callable[[int], Any], Any, DeciderFactory]:
    """(agent factory, intervention, deciders fitted on the training table) of an :func:`eval_spec`."""
    from agentcritic.helper.dp import check_costs
    from agentcritic.helper.episode_files import read_episodes
    from agentcritic.specs import PolicySpec
    from agentcritic.helper.interventions import make_intervention
    from agentcritic.helper.tabular import TabularModel

    if spec.get("threads"):
        import torch

        torch.set_num_threads(int(spec["threads"]))
    scorer = MemoScorer.load(prm_scorer(load_prm(spec["prm"], spec["device"]), spec["helped_actor"]),
                             spec.get("prm_scores"), prm_identity(spec["prm"]))
    intervention = InterventionConfig(**spec["intervention"])
    offered = [InterventionConfig(**i) for i in spec.get("interventions") or []] or [intervention]
    # the budgets are in the interventions' cost units; a takeover is one request in the table too
    costs = {i.actor: i.cost for i in offered}
    table = TabularModel.from_episodes(read_episodes(spec["data"]), state_key=spec["state_key"], prm=scorer,
                                       n_min=spec["n_min"], kappa=spec["kappa"],
                                       takeovers={i.actor: i.takeover for i in offered},
                                       default_actor=offered[0].actor)
    check_costs(table, costs)
    helper = None
    if spec["helper"]:
        from agentcritic.helper.helper_model import load_helper

        helper = load_helper(spec["helper"], device=spec["device"])
        helper.check_costs(costs)
        helper.check_env(spec["env"])
        if spec.get("helper_threshold") is not None:  # another operating point than the one it was saved with
            helper.threshold = float(spec["helper_threshold"])
    factory = DeciderFactory(table, prm=scorer, helper=helper, seed=spec["seed"], costs=costs)
    policy = PolicySpec(**spec["policy_spec"])

    def agent_for(seed: int) -> Any:
        # a deterministic base plays every method's episode of a task alike until the first ask: its
        # actions are computed once per state (agentcritic.agents.memo)
        return policy.make_memoised(seed)

    if spec.get("interventions"):
        return agent_for, {i.actor: make_intervention(i) for i in offered}, factory
    return agent_for, make_intervention(intervention), factory


def _oracle_of(config: EvalHelperConfig, spec: dict[str, Any]) -> dict[str, Any]:
    """The fewest-asks oracle of the evaluated tasks from the ``--oracle`` sweep run, with its ask steps."""
    from agentcritic import envs
    from agentcritic.helper.ask_steps import oracle_from_sweep, oracle_step_counts

    env = envs.make(spec["env"], **spec["env_kwargs"])
    try:
        tasks = env.task_ids(config.split, limit=config.limit)
    finally:
        env.close()
    oracle = oracle_from_sweep(str(config.oracle), tasks, env=spec["env"], split=config.split)
    return {**oracle, "ask_steps": oracle_step_counts(oracle), "run": str(config.oracle)}


def run_eval_helper(config: EvalHelperConfig, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Evaluate every method × budget into run folder ``out`` (resumable); return the results."""
    import os

    from agentcritic import envs

    start = time.perf_counter()
    out = Path(out)
    if "helper" in config.methods and not config.helper:
        raise EvalHelperError("method 'helper' needs --helper RUN (a train-helper run folder); "
                              "or leave 'helper' out of --methods")
    store = RunStore(out)  # claimed by the stage contract (agentcritic.stage)
    # the training table's PRM scores are kept in the run: a resumed run and the workers reuse them
    scores = (out / SCORES_FILE).resolve()
    if config.helper:  # train-helper scored the same training table with the same PRM: not again
        seed_scores(scores, Path(config.helper) / SCORES_FILE)
    spec = {**eval_spec(config), "prm_scores": str(scores)}
    oracle = _oracle_of(config, spec) if config.oracle else None  # a run that does not fit: said before any work
    agent_for, intervention, factory = build_parts(spec)
    from agentcritic.helper.dp import check_costs

    check_costs(factory.table, factory.costs, config.budgets)  # a budget no request fits: say so before playing
    methods = expand_methods(config.methods, list(factory.costs) if isinstance(intervention, Mapping) else [])
    factory.prm.save(scores, prm_identity(config.prm))
    table = factory.table
    workers = None
    if config.workers > 1 or config.executor == "ray":
        threads = max(1, (os.cpu_count() or 1) // max(1, config.workers))
        workers = EvalWorkers({**spec, "threads": threads}, config.workers, config.executor)
    env = envs.make(spec["env"], **spec["env_kwargs"])
    tasks = env.task_ids(config.split, limit=config.limit)
    shard = store.shard(STAGE)
    try:
        rows = run_method_episodes(env, agent_for, intervention, tasks, methods, config.budgets, factory,
                                   split=config.split, samples=config.samples, seed=config.seed, shard=shard,
                                   progress=progress, workers=workers)
        summary = summarise_rows(rows, config.budgets)
        misses = {budget_label(b): sum(r.get("table_misses", 0) for r in rows
                                       if r["method"] == "dp" and r["budget"] == budget_label(b) and not r.get("same_as"))
                  for b in config.budgets} if "dp" in methods else {}
        dp_train: list[dict[str, Any]] = []
        if config.dp_on_train and "dp" in methods:
            train_tasks = table.tasks[: config.train_limit] if config.train_limit else table.tasks
            train_rows = run_method_episodes(env, agent_for, intervention, train_tasks, ["dp"], config.budgets,
                                             factory, split="train", samples=config.samples, seed=config.seed,
                                             shard=shard, progress=progress, workers=workers)
            predicted = dp_predictions(factory, train_tasks, config.budgets)
            for row in summarise_rows(train_rows, config.budgets):
                dp_train.append({**row, **predicted[row["budget"]]})
    finally:
        env.close()
    from agentcritic.parallel import llm_calls_of

    labels = [budget_label(b) for b in config.budgets]
    from agentcritic.helper.ask_steps import ask_step_counts, oracle_rows

    if oracle is not None:  # its rows, labelled as an oracle
        summary = summary + oracle_rows(oracle, labels)

    results = {
        "env": spec["env"], "split": config.split, "tasks": len(tasks), "budgets": labels,
        "methods": methods, "results": summary, "dp_train": dp_train, "dp_lookup_misses": misses,
        "tabular_model": table.summary(), "costs": factory.costs, "policy": spec["policy"],
        "ask_steps": ask_step_counts(rows), "oracle": oracle,
        "intervention": ", ".join(factory.costs) if isinstance(intervention, Mapping) else spec["intervention"]["kind"],
        "seconds": round(time.perf_counter() - start, 2),
        "pending": len(shard.retries), **llm_calls_of(shard).as_fields(),
        "errors": len(shard.retries) + sum(r.get("error") is not None for r in rows if not r.get("same_as")),
    }
    store.write_json("results.json", results)
    store.close()
    results["table"] = format_table(summary, dp_train)
    return results
